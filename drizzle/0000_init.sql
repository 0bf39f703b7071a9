CREATE TABLE `im_message` (
	`app_id` int NOT NULL,
	`user_id` bigint unsigned NOT NULL,
	`msg_id` bigint unsigned NOT NULL,
	`sender_id` bigint unsigned NOT NULL,
	`biz_code` int NOT NULL,
	`data` mediumtext NOT NULL,
	`ts` bigint NOT NULL,
	CONSTRAINT `im_message_app_id_user_id_msg_id_pk` PRIMARY KEY(`app_id`,`user_id`,`msg_id`)
);
--> statement-breakpoint
CREATE TABLE `living_room` (
	`id` int unsigned AUTO_INCREMENT NOT NULL,
	`anchor_id` bigint unsigned NOT NULL,
	`type` tinyint NOT NULL DEFAULT 1,
	`status` tinyint NOT NULL DEFAULT 1,
	`room_name` varchar(60) NOT NULL DEFAULT '',
	`covert_img` varchar(255),
	`watch_num` int NOT NULL DEFAULT 0,
	`good_num` int NOT NULL DEFAULT 0,
	`start_time` datetime(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
	`update_time` datetime(3),
	CONSTRAINT `living_room_id` PRIMARY KEY(`id`)
);
--> statement-breakpoint
CREATE TABLE `living_room_record` (
	`id` int unsigned NOT NULL,
	`anchor_id` bigint unsigned NOT NULL,
	`type` tinyint NOT NULL DEFAULT 1,
	`status` tinyint NOT NULL DEFAULT 1,
	`room_name` varchar(60) NOT NULL DEFAULT '',
	`covert_img` varchar(255),
	`watch_num` int NOT NULL DEFAULT 0,
	`good_num` int NOT NULL DEFAULT 0,
	`start_time` datetime(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
	`update_time` datetime(3),
	`end_time` datetime(3),
	CONSTRAINT `living_room_record_id` PRIMARY KEY(`id`)
);
--> statement-breakpoint
CREATE INDEX `living_room_type_id` ON `living_room` (`type`,`id`);--> statement-breakpoint
CREATE INDEX `living_room_anchor` ON `living_room` (`anchor_id`);--> statement-breakpoint
CREATE INDEX `living_room_record_anchor` ON `living_room_record` (`anchor_id`);
-- One live room per anchor: living_room.anchor_id becomes UNIQUE, so concurrent starts by one anchor
-- can no longer open several rooms (LivingRooms.start re-selects the winner on a duplicate key).
--
-- Databases from before this migration may already hold several live rows for one anchor (that race),
-- which would make the unique index fail and with it every node's start. Those extra rows are closed
-- the way a close does it, not deleted: each anchor keeps its oldest live row (the lowest id, the one
-- start() returned first and the one its anchor-index lookup found), and every other row of that
-- anchor moves to living_room_record with status 0 and end_time = now. Nothing is lost (watch and like
-- counts, times stay on record) and the list loses its phantoms. A row whose id is somehow on record
-- already is only deleted. Redis may still hold a moved room's cached object for its TTL (10 min);
-- the list cache is rebuilt every second from MySQL.
-- Both steps find nothing on a fresh database or on a rerun. MySQL DDL commits as it goes, so if the
-- ALTER fails (say an old node inserted a duplicate meanwhile) the next start runs this whole file
-- again: the steps and the single ALTER below are safe to repeat.
INSERT INTO `living_room_record`
	(`id`, `anchor_id`, `type`, `status`, `room_name`, `covert_img`, `watch_num`, `good_num`, `start_time`, `update_time`, `end_time`)
SELECT r.`id`, r.`anchor_id`, r.`type`, 0, r.`room_name`, r.`covert_img`, r.`watch_num`, r.`good_num`, r.`start_time`, CURRENT_TIMESTAMP(3), CURRENT_TIMESTAMP(3)
FROM `living_room` r
WHERE EXISTS (SELECT 1 FROM `living_room` k WHERE k.`anchor_id` = r.`anchor_id` AND k.`id` < r.`id`)
	AND NOT EXISTS (SELECT 1 FROM `living_room_record` x WHERE x.`id` = r.`id`);--> statement-breakpoint
DELETE r FROM `living_room` r JOIN `living_room` k ON k.`anchor_id` = r.`anchor_id` AND k.`id` < r.`id`;--> statement-breakpoint
-- drizzle-kit generated the index swap as DROP INDEX then ADD CONSTRAINT; they are one ALTER here, so
-- that it happens whole or not at all and a rerun never meets a half-done swap.
ALTER TABLE `living_room` DROP INDEX `living_room_anchor`, ADD CONSTRAINT `living_room_anchor_unique` UNIQUE(`anchor_id`);

-- An anchor is a user of one app (the user JWT's appId claim): the same userId in another app is
-- another person, who opens a room of its own and may not close this one. Rooms get the anchor's
-- app_id (10001, the default app, for every room from before), and one live room per anchor becomes
-- one per (app_id, anchor_id).
-- drizzle-kit generated the living_room change as four statements; the column and the index swap
-- are one ALTER here, so that it happens whole or not at all. Neither step can meet duplicates: the
-- old unique index on anchor_id alone is stricter than the new one.
ALTER TABLE `living_room_record` ADD `app_id` int DEFAULT 10001 NOT NULL;--> statement-breakpoint
ALTER TABLE `living_room` ADD `app_id` int DEFAULT 10001 NOT NULL, DROP INDEX `living_room_anchor_unique`, ADD CONSTRAINT `living_room_app_anchor_unique` UNIQUE(`app_id`,`anchor_id`);

"""The pytest front: the console command, the plugin that makes every case an item, options, progress, results."""

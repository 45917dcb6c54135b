//! Integration tests of the storage core and the CLI: real files, real processes, real kills.

mod attacks;
mod bad_input;
mod concurrency;
mod conversations;
mod crash;
mod durability;
mod fuzz;
mod groups;
mod hostile;
mod live;
mod merge;
mod os_users;
mod photos;
mod receipts;
mod server;
mod server_import;
mod server_push;
mod server_sync;
mod store;
mod sync;
mod syncthing;
mod trust;

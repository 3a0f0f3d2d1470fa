//! The engine: a room's database with change capture and the outbox ([`primary`], [`capture`],
//! [`outbox`], [`write`]), its migrations ([`migrate`], [`meta`]), replication to the replica
//! ([`sync`], [`replica`]), reads ([`read`]), timers and the alarm ([`timers`], [`clock`]), and
//! what it is billed ([`billing`]).

pub mod across;
pub mod billing;
pub mod capture;
pub mod clock;
pub mod meta;
pub mod migrate;
pub mod outbox;
pub mod primary;
pub mod read;
pub mod replica;
pub mod shard;
pub mod sync;
pub mod timers;
pub mod write;

//! Room-scoped reads through the engine: a consistency mode, and the primary as fallback.

use std::cell::Cell;

use super::Engine;
use crate::clock::Scheduler;
use crate::error::{Error, Result};
use crate::primary::Primary;
use crate::read::{check_room, Consistency, RoomQuery, RoomReads};
use crate::replica::Replica;
use crate::value::Row;

/// Where a read was answered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    /// The shared replica (D1).
    Replica,
    /// The room's primary (its Durable Object).
    Primary,
}

/// Reads of the engine's room with one consistency mode. Implements [`RoomReads`], so generated
/// `room_*` functions take it.
pub struct EngineReads<'a, P, R, S> {
    engine: &'a Engine<P, R, S>,
    consistency: Consistency,
    last_source: Cell<Option<Source>>,
}

impl<P: Primary, R: Replica, S: Scheduler> Engine<P, R, S> {
    /// Room-scoped reads of this room: `Strong` from the primary; `Replica` from the replica
    /// (may lag) unless it errs, is absent or is being resynced; `ReadYourWrites(seq)` from the
    /// replica only when its watermark has reached `seq`. Every fallback goes to the primary.
    pub fn reads(&self, consistency: Consistency) -> EngineReads<'_, P, R, S> {
        EngineReads {
            engine: self,
            consistency,
            last_source: Cell::new(None),
        }
    }
}

impl<P, R, S> EngineReads<'_, P, R, S> {
    /// Where the last read was answered.
    pub fn last_source(&self) -> Option<Source> {
        self.last_source.get()
    }
}

impl<P: Primary, R: Replica, S: Scheduler> RoomReads for EngineReads<'_, P, R, S> {
    async fn read(&self, room: &str, query: &RoomQuery) -> Result<Vec<Row>> {
        check_room(room)?;
        let engine = self.engine;
        if room != engine.room {
            return Err(Error::WrongRoom {
                asked: room.to_owned(),
                own: engine.room.clone(),
            });
        }
        let use_replica = match self.consistency {
            Consistency::Strong => false,
            Consistency::Replica => true,
            Consistency::ReadYourWrites(seq) => seq <= engine.watermark.get(),
        };
        // A room blocked or stale in the replica is answered by its primary, as the gateway
        // does from the replica's mark.
        let parked = {
            let st = engine.stats.borrow();
            st.blocked.is_some() || st.stale
        };
        if use_replica && !parked && !engine.resync_in_progress()? {
            if let Some(replica) = engine.replica.as_ref() {
                match replica.query(&query.for_replica(room)).await {
                    Ok(rows) => {
                        engine.stats.borrow_mut().replica_available = true;
                        self.last_source.set(Some(Source::Replica));
                        return Ok(rows);
                    }
                    Err(e) => {
                        let mut st = engine.stats.borrow_mut();
                        st.replica_available = false;
                        st.last_error = Some(e.to_string());
                    }
                }
            }
        }
        self.last_source.set(Some(Source::Primary));
        engine.primary.query(&query.primary_sql, &query.params)
    }
}

//! Shared server state: the registry of queues, each model behind its own lock.
//!
//! Locking: the registry is a `std::sync::RwLock` taken only to look a queue up (read)
//! or to create/delete one (write). Each queue's [`Queue`] model sits in its own
//! `std::sync::Mutex`, held only while the model runs, never across an `.await`; so
//! requests to different queues run in parallel on both cores and a long poll holds no
//! lock while it waits. Std locks are right here: critical sections are short and
//! synchronous (the tokio docs recommend them for this case).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock, Weak};
use std::time::{SystemTime, UNIX_EPOCH};

use tokio::sync::{Notify, watch};

use crate::chaos::{Chaos, Decision};
use crate::error::{ErrorCode, Result, SqsError};
use crate::latency::LatencySpec;
use crate::model::{Millis, Queue, RecentlyDeleted};
use crate::moves::MoveTasks;
use crate::throttle::TaggingQuota;

/// One queue of the registry.
pub(crate) struct QueueSlot {
    /// The queue's name.
    pub name: String,
    /// The queue's ARN.
    pub arn: String,
    model: Mutex<Queue>,
    /// Woken when messages may have become available (send, visibility change to 0,
    /// redrive into this queue, deletion of the queue). Long pollers wait on it.
    pub wakeup: Notify,
    /// Set when the queue is deleted, so waiting long polls give up.
    pub deleted: std::sync::atomic::AtomicBool,
}

impl QueueSlot {
    /// A slot for `queue` outside any registry (tests).
    #[cfg(test)]
    pub fn detached(queue: Queue, arn: &str) -> Arc<Self> {
        Arc::new(QueueSlot {
            name: queue.name().to_owned(),
            arn: arn.to_owned(),
            model: Mutex::new(queue),
            wakeup: Notify::new(),
            deleted: false.into(),
        })
    }

    /// Locks the model. A panic while the lock was held (a bug) must not take the
    /// whole endpoint down, so poisoning is ignored: the model keeps its invariants
    /// between statements that can panic.
    pub fn lock(&self) -> MutexGuard<'_, Queue> {
        self.model.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Whether the queue was deleted.
    pub fn is_deleted(&self) -> bool {
        self.deleted.load(std::sync::atomic::Ordering::Acquire)
    }
}

/// Per-request facts the operations need from the HTTP layer.
pub(crate) struct RequestContext<'a> {
    /// `http://host:port`, from the `Host` header, for queue URLs.
    pub base_url: String,
    /// The fault injector and its decision for this request, if faults are
    /// injected.
    pub chaos: Option<(&'a Chaos, Decision)>,
}

impl RequestContext<'_> {
    /// A context without fault injection.
    pub fn plain(base_url: String) -> Self {
        RequestContext {
            base_url,
            chaos: None,
        }
    }
}

/// The endpoint's state, shared by all connections.
pub(crate) struct Service {
    pub account_id: String,
    pub region: String,
    /// The bound address, for queue URLs when a request has no `Host` header.
    pub local_addr: std::net::SocketAddr,
    queues: RwLock<HashMap<String, Arc<QueueSlot>>>,
    /// Names of queues deleted in the last 60 s. Only touched while `queues` is
    /// write-locked, so a delete and a create of one name cannot interleave.
    deleted: Mutex<RecentlyDeleted>,
    /// Turns true when the server shuts down; long polls end early.
    pub shutdown: watch::Receiver<bool>,
    /// The fault injector, if faults are injected.
    pub chaos: Option<Arc<Chaos>>,
    /// Most messages in flight per queue (both kinds).
    pub max_in_flight: usize,
    /// Delay added to every response, if any.
    pub latency: Option<LatencySpec>,
    /// The account's tagging quota (one bucket for the whole server).
    tagging: TaggingQuota,
    /// Message-move tasks (dead-letter redrive), by source queue.
    pub moves: MoveTasks,
    /// This service itself, for background work (message-move tasks) that outlives
    /// the request that started it.
    this: Weak<Service>,
}

/// The settings of a [`Service`] beyond its identity.
pub(crate) struct Limits {
    pub max_in_flight: usize,
    pub latency: Option<LatencySpec>,
    /// Tagging actions per second (and burst); 0: no quota.
    pub tagging_tps: u32,
}

/// The wall clock as the model wants it.
pub(crate) fn now() -> Millis {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// A random version-4 UUID, for request ids and message-move task ids.
pub(crate) fn random_uuid() -> String {
    let v: u128 = rand::random();
    let v = (v & !(0xf << 76) | (0x4 << 76)) & !(0x3 << 62) | (0x2 << 62);
    uuid_text(v)
}

/// A 128-bit value in the UUID text form (8-4-4-4-12 hex digits).
pub(crate) fn uuid_text(v: u128) -> String {
    format!(
        "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
        (v >> 96) as u32,
        (v >> 80) as u16,
        (v >> 64) as u16,
        (v >> 48) as u16,
        v & 0xffff_ffff_ffff
    )
}

impl Service {
    /// A service with no queues; `this` must point at the `Arc` it is put in
    /// (build it with `Arc::new_cyclic`).
    pub fn new(
        account_id: String,
        region: String,
        local_addr: std::net::SocketAddr,
        shutdown: watch::Receiver<bool>,
        chaos: Option<Arc<Chaos>>,
        limits: Limits,
        this: Weak<Service>,
    ) -> Self {
        Service {
            account_id,
            region,
            local_addr,
            queues: RwLock::new(HashMap::new()),
            deleted: Mutex::new(RecentlyDeleted::new()),
            shutdown,
            chaos,
            max_in_flight: limits.max_in_flight,
            latency: limits.latency,
            tagging: TaggingQuota::per_second(limits.tagging_tps),
            moves: MoveTasks::default(),
            this,
        }
    }

    /// This service, shared, for background work; `None` only while it is dropped.
    pub fn shared(&self) -> Option<Arc<Service>> {
        self.this.upgrade()
    }

    /// Counts one tagging action against the account's quota: `false` if it is over
    /// the quota (and must be refused).
    pub fn admit_tagging(&self) -> bool {
        self.tagging.admit()
    }

    /// `arn:aws:sqs:<region>:<account>:<name>`.
    pub fn arn(&self, name: &str) -> String {
        format!("arn:aws:sqs:{}:{}:{name}", self.region, self.account_id)
    }

    /// The URL of queue `name` as seen by this request.
    pub fn queue_url(&self, ctx: &RequestContext, name: &str) -> String {
        format!("{}/{}/{name}", ctx.base_url, self.account_id)
    }

    /// Looks a queue up by name.
    pub fn get(&self, name: &str) -> Option<Arc<QueueSlot>> {
        self.queues
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(name)
            .cloned()
    }

    /// Looks a queue up by ARN (for redrive targets).
    pub fn get_by_arn(&self, arn: &str) -> Option<Arc<QueueSlot>> {
        let prefix = self.arn("");
        self.get(arn.strip_prefix(&prefix)?)
    }

    /// Resolves a `QueueUrl` parameter: `<anything>/<account>/<name>`.
    pub fn resolve_url(&self, url: &str) -> Result<Arc<QueueSlot>> {
        let path = match url.split_once("://") {
            Some((_, rest)) => rest.split_once('/').map_or("", |(_, path)| path),
            None => url,
        };
        let mut segments = path.rsplit('/').filter(|s| !s.is_empty());
        let (Some(name), Some(account)) = (segments.next(), segments.next()) else {
            return Err(SqsError::new(
                ErrorCode::InvalidAddress,
                format!("The address {url} is not valid for this endpoint."),
            ));
        };
        if account != self.account_id {
            return Err(SqsError::no_queue());
        }
        self.get(name).ok_or_else(SqsError::no_queue)
    }

    /// Inserts a new queue unless the name is taken; returns the slot under that name
    /// and whether it was created. Fails with `QueueDeletedRecently` if a queue of
    /// that name was deleted less than 60 s before `now`.
    pub fn insert_if_absent(
        &self,
        mut queue: Queue,
        now: Millis,
    ) -> Result<(Arc<QueueSlot>, bool)> {
        if self.chaos.as_ref().is_some_and(|c| c.resurrects()) {
            // Small and bounded: 16 messages of at most 64 KiB per queue.
            queue.keep_deleted(16);
        }
        queue.set_in_flight_limit(self.max_in_flight);
        let mut queues = self.queues.write().unwrap_or_else(PoisonError::into_inner);
        if let Some(existing) = queues.get(queue.name()) {
            return Ok((existing.clone(), false));
        }
        self.deleted
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .check(queue.name(), now)?;
        let name = queue.name().to_owned();
        let slot = Arc::new(QueueSlot {
            arn: self.arn(&name),
            name: name.clone(),
            model: Mutex::new(queue),
            wakeup: Notify::new(),
            deleted: false.into(),
        });
        queues.insert(name, slot.clone());
        Ok((slot, true))
    }

    /// Removes a queue, remembers its name as deleted at `now` and wakes its long
    /// pollers.
    pub fn remove(&self, name: &str, now: Millis) -> Option<Arc<QueueSlot>> {
        let mut queues = self.queues.write().unwrap_or_else(PoisonError::into_inner);
        let slot = queues.remove(name)?;
        self.deleted
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .record(name, now);
        drop(queues);
        slot.deleted
            .store(true, std::sync::atomic::Ordering::Release);
        slot.wakeup.notify_waiters();
        Some(slot)
    }

    /// All queues, sorted by name.
    pub fn all(&self) -> Vec<Arc<QueueSlot>> {
        let mut all: Vec<_> = self
            .queues
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .values()
            .cloned()
            .collect();
        all.sort_by(|a, b| a.name.cmp(&b.name));
        all
    }
}

//! The size of an explored configuration: its bounds and features.

/// The size of the explored configuration.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Bounds {
    /// Members (participants), 1 to 8.
    pub members: usize,
    /// Generations every participant goes through.
    pub generations: u64,
    /// Duplicate deliveries in a run (check-ins and notices together).
    pub duplications: u8,
    /// Visibility lapses of held check-ins in a run.
    pub lapses: u8,
    /// Coordinator crashes in a run (invocations killed, under the Lambda
    /// coordinator).
    pub crashes: u8,
    /// Notice copies dropped by retention expiry in a run.
    pub expiries: u8,
    /// Status reads that may happen at any moment (racing with deliveries
    /// and the coordinator), in a run.
    pub racing_resends: u8,
    /// Status reads per participant per wait when nothing else but a fault
    /// can happen (the status interval outlasts SQS and the coordinator).
    pub quiet_resends: u8,
    /// Takeovers by a standby while the active coordinator lives, in a run.
    /// With [`lease`](Self::lease) the active one's lease has run out (it
    /// stops before its next request); without it, both run at once. Under
    /// the Lambda coordinator: invocations started while another runs
    /// (only without the lease).
    pub takeovers: u8,
    /// Rests of the active coordinator process in a run (under the lease):
    /// with everything it decided published and nothing held, it gives
    /// the lease back (docs/PROTOCOL.md, "Resting"); another coordinator
    /// takes it at once and starts from the register, and its lease runs
    /// out between any two of its steps (or it crashes, or the rested one
    /// reads its write and stands down). Then the rested one wakes: it
    /// goes on, its restart grace again, if the register still holds its
    /// own write, else it stands down. The token's receive count, by which
    /// the rested one knows that somebody else held the lease since, is
    /// not modelled: this checks the case where it does not tell.
    pub rests: u8,
    /// Deletes of a notice nobody needs (by the participant that read it)
    /// that do not take effect, in a run: on SQS a delete with a receipt
    /// handle that is no longer the latest one (another participant read
    /// the message since) might not delete.
    pub stuck_deletes: u8,
    /// Membership changes and the other features of version 2.
    pub features: Features,
    /// The coordinators decide only while they hold the lease (docs/PROTOCOL.md,
    /// section 2, "The lease"): one decides at a time. `false` models the
    /// protocol without it, or a broken timing assumption: a standby that
    /// took the active coordinator for dead runs beside it, and a state
    /// write is a read, then a write, with the other's steps between.
    pub lease: bool,
    /// Which coordinator decides: a process, or the Lambda function.
    pub coordinator: CoordinatorKind,
}

/// Which coordinator the model runs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum CoordinatorKind {
    /// A coordinator process (`sqs-barrier coordinator`): one life receives
    /// check-ins one at a time and goes on until it crashes, its lease runs
    /// out, or it stands down.
    #[default]
    Process,
    /// The coordinator as the Lambda function: the event source takes a
    /// batch of 1 to `batch` visible check-in copies and invokes the
    /// function, whose invocation is one `LambdaRound` of the core (see the
    /// crate documentation). A crash is an invocation killed (a function
    /// timeout, a lost instance, a lease that ran out); `takeovers` counts
    /// the invocations started while another runs, only without the lease
    /// (under the lease, invocations take turns), and `lapses` must be 0:
    /// an event source mapping needs the queue's visibility timeout to be
    /// at least the function's timeout, so nothing an invocation holds
    /// becomes visible before the invocation is over.
    Lambda {
        /// The most records a batch holds (the mapping's batch size).
        batch: u8,
    },
}

impl CoordinatorKind {
    /// The Lambda function with batches of 1 or 2 records.
    pub const LAMBDA: CoordinatorKind = CoordinatorKind::Lambda { batch: 2 };

    /// Whether this is the Lambda function.
    pub fn is_lambda(self) -> bool {
        matches!(self, CoordinatorKind::Lambda { .. })
    }
}

/// The features of a membership that changes, each on or off.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Features {
    /// The last configured member leaves at generation 0 (its check-in
    /// there carries `leave`) and goes through no later one.
    pub leave: bool,
    /// One more process joins: it sends a join message at any moment,
    /// learns its position and first generation from the published state,
    /// and goes through the generations from there.
    pub join: bool,
    /// A quorum barrier of all configured members but one, with no grace:
    /// the last configured member arrives at each generation only when the
    /// model chooses (never, before or after a quorum release).
    pub quorum: bool,
    /// Every check-in brings data (`"<member>.<generation>"`).
    pub gather: bool,
}

impl Features {
    /// The protocol of version 1: none.
    pub const NONE: Features = Features {
        leave: false,
        join: false,
        quorum: false,
        gather: false,
    };
}

impl Bounds {
    /// The configuration the specification asks for: 3 members, 2
    /// generations, one duplicated delivery (a check-in or a notice), one
    /// coordinator crash, one quiet re-send per wait; reordering is always
    /// on. (All fault kinds at once do not finish in 10 minutes; the other
    /// kinds are checked in pairs with a crash, see tests/check.rs.)
    pub const STANDARD: Bounds = Bounds {
        members: 3,
        generations: 2,
        duplications: 1,
        lapses: 0,
        crashes: 1,
        expiries: 0,
        racing_resends: 0,
        quiet_resends: 1,
        takeovers: 0,
        rests: 0,
        stuck_deletes: 0,
        features: Features::NONE,
        lease: true,
        coordinator: CoordinatorKind::Process,
    };
}

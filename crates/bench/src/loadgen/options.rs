//! The command line of `loadgen`: its options, their defaults and the usage
//! message.

use std::net::SocketAddr;

pub(super) struct Options {
    pub(super) moto: Option<String>,
    pub(super) rounds: usize,
    pub(super) secs: f64,
    pub(super) handoffs: usize,
    pub(super) clients: usize,
    pub(super) depth: usize,
    pub(super) ops: usize,
    pub(super) moto_depth: usize,
    pub(super) moto_ops: usize,
    pub(super) only: Vec<String>,
    pub(super) json: bool,
    pub(super) attach: Option<SocketAddr>,
    pub(super) pid: Option<u32>,
}

pub(super) fn usage() -> ! {
    eprintln!(
        "usage: loadgen [--moto PATH | --no-moto] [--rounds N] [--secs S] [--handoffs N] \
         [--clients N] [--depth N] [--ops N] [--moto-depth N] [--moto-ops N] \
         [--only seq,handoff,conc,deep,moto-deep] [--attach HOST:PORT [--pid PID]] [--json]\n\
         \x20      loadgen --serve HOST:PORT"
    );
    std::process::exit(2)
}

pub(super) fn parse_options(args: &[String]) -> Options {
    let default_moto = concat!(env!("CARGO_MANIFEST_DIR"), "/../../.venv/bin/moto_server");
    let mut o = Options {
        moto: std::path::Path::new(default_moto)
            .exists()
            .then(|| default_moto.to_owned()),
        rounds: 5,
        secs: 1.5,
        handoffs: 100,
        clients: 8,
        depth: 1_000_000,
        ops: 2000,
        moto_depth: 1_000,
        moto_ops: 50,
        only: ["seq", "handoff", "conc", "deep", "moto-deep"]
            .map(str::to_owned)
            .to_vec(),
        json: false,
        attach: None,
        pid: None,
    };
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        let mut value = || it.next().cloned().unwrap_or_else(|| usage());
        match arg.as_str() {
            "--moto" => o.moto = Some(value()),
            "--no-moto" => o.moto = None,
            "--rounds" => o.rounds = value().parse().unwrap_or_else(|_| usage()),
            "--secs" => o.secs = value().parse().unwrap_or_else(|_| usage()),
            "--handoffs" => o.handoffs = value().parse().unwrap_or_else(|_| usage()),
            "--clients" => o.clients = value().parse().unwrap_or_else(|_| usage()),
            "--depth" => o.depth = value().parse().unwrap_or_else(|_| usage()),
            "--ops" => o.ops = value().parse().unwrap_or_else(|_| usage()),
            "--moto-depth" => o.moto_depth = value().parse().unwrap_or_else(|_| usage()),
            "--moto-ops" => o.moto_ops = value().parse().unwrap_or_else(|_| usage()),
            "--only" => o.only = value().split(',').map(str::to_owned).collect(),
            "--attach" => o.attach = Some(value().parse().unwrap_or_else(|_| usage())),
            "--pid" => o.pid = Some(value().parse().unwrap_or_else(|_| usage())),
            "--json" => o.json = true,
            _ => usage(),
        }
    }
    if o.rounds == 0 || o.ops < 10 || o.moto_ops < 10 || o.clients == 0 {
        usage();
    }
    o
}

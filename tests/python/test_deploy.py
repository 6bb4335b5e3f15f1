"""deploy/template.yaml cannot drift from what `sqs-barrier setup` creates.

The template does not create the queues: it refers to those `setup` made, by
name. So for a standard and a FIFO barrier these tests run the real
`sqs-barrier setup` on the embedded endpoint, list what it created with
boto3, resolve the template for that barrier (its `!Sub`, `!FindInMap`,
`!If`), and check that

* every queue the IAM statements, the event source mapping and the alarm
  name exists, except the names the code only looks up (below);
* the function role grants exactly the actions the Lambda coordinator's
  interface lists, queue by queue, and nothing else;
* the participants' and operators' policies grant exactly what the code
  needs (reasoned from the code in the comments of EXPECTED_*), and the
  real commands, run through a recording proxy, make no request those
  policies would deny;
* the mapping, the timeout and the schedule fit the queue's attributes;
* a barrier set up by an earlier version (no state queue) is upgraded by
  `setup` with the same rules within the operators' policy, and until then
  a participant gets the error that says so, not AccessDenied.

IAM evaluation here is deliberately simple: the template uses only Allow
statements with exact action names and exact ARNs (or "*" for
sqs:ListQueues), and the test asserts that before relying on it.
"""

import base64
import http.client
import json
import subprocess
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

import pytest
from cfnlint.decode.cfn_yaml import load as load_cfn_yaml

from conftest import ROOT, _server_binary, cli_env, make_client

TEMPLATE = ROOT / "deploy" / "template.yaml"

# --------------------------------------------------------------------------
# What each principal needs, by queue role (CHECKIN, RELEASE, DLQ, STATE)
# and, for GetQueueUrl, by the names the code looks up. Batch calls are
# authorised by the single-message actions (SendMessageBatch by
# sqs:SendMessage, and so on).

CHECKIN, RELEASE0, RELEASE1, DLQ, STATE, LEASE = (
    "checkin",
    "release-0",
    "release-1",
    "dlq",
    "state",
    "lease",
)

# The interface of the Lambda coordinator (crates/lambda), as agreed:
FUNCTION_ACTIONS = {
    # The event source mapping polls with the function's role (Receive,
    # Delete, GetQueueAttributes, ChangeMessageVisibility); the function
    # reads the configuration in the tags while the state queue holds no
    # state, and marks it version 2 once (ListQueueTags, TagQueue). It does
    # not write the copy of the state in tags (a coordinator process does,
    # with the same two actions).
    CHECKIN: {
        "sqs:ReceiveMessage",
        "sqs:DeleteMessage",
        "sqs:ChangeMessageVisibility",
        "sqs:GetQueueAttributes",
        "sqs:GetQueueUrl",
        "sqs:ListQueueTags",
        "sqs:TagQueue",
    },
    # One notice per release (SendMessage); the sweep of old notices
    # (crates/barrier/src/notices.rs: ReceiveMessage with visibility 10,
    # DeleteMessageBatch, ChangeMessageVisibilityBatch).
    RELEASE0: {
        "sqs:GetQueueUrl",
        "sqs:SendMessage",
        "sqs:ReceiveMessage",
        "sqs:DeleteMessage",
        "sqs:ChangeMessageVisibility",
    },
    RELEASE1: {
        "sqs:GetQueueUrl",
        "sqs:SendMessage",
        "sqs:ReceiveMessage",
        "sqs:DeleteMessage",
        "sqs:ChangeMessageVisibility",
    },
    # Dead letters (notices.rs, send_dead_letter).
    DLQ: {"sqs:GetQueueUrl", "sqs:SendMessage"},
    # The published state (crates/barrier/src/published.rs): reads are a
    # ReceiveMessage with visibility 0; a write hides the queue's records
    # (ReceiveMessage, visibility 5 s), sends the new one (SendMessage) and
    # deletes the older ones (DeleteMessageBatch), or makes them visible
    # again when another coordinator's orders after it
    # (ChangeMessageVisibilityBatch).
    STATE: {
        "sqs:GetQueueUrl",
        "sqs:ReceiveMessage",
        "sqs:SendMessage",
        "sqs:DeleteMessage",
        "sqs:ChangeMessageVisibility",
    },
    # The coordinators' lease (crates/barrier/src/lease.rs): an invocation
    # takes the token (ReceiveMessage), gives it back
    # (ChangeMessageVisibility), replaces an old one (SendMessage,
    # DeleteMessage) and puts one when the queue holds none
    # (GetQueueAttributes).
    LEASE: {
        "sqs:GetQueueUrl",
        "sqs:ReceiveMessage",
        "sqs:ChangeMessageVisibility",
        "sqs:SendMessage",
        "sqs:DeleteMessage",
        "sqs:GetQueueAttributes",
    },
}

# `sqs-barrier wait` / the library's Barrier (crates/barrier/src):
# * Barrier::connect -> admin::open: GetQueueUrl of the check-in queue (the
#   standard name first, then the FIFO one), both release queues, the
#   dead-letter queue and the state queue; ReceiveMessage of the state queue
#   (the newest record carries the configuration); ListQueueTags of the
#   check-in queue only when it holds none (no coordinator has published).
# * arrive/wait: SendMessage of the check-in (participant.rs,
#   send_checkin_queue), also for Barrier::abort; ReceiveMessage on the
#   release queue of the generation (visibility 0); DeleteMessageBatch of old
#   notices it meets (delete_old); ReceiveMessage of the state queue for
#   status reads (published::read_state, visibility 0).
# Nothing else: no GetQueueAttributes, no ChangeMessageVisibility, nothing on
# the dead-letter queue but its lookup, no writes to the state queue.
PARTICIPANT_ACTIONS = {
    CHECKIN: {"sqs:GetQueueUrl", "sqs:ListQueueTags", "sqs:SendMessage"},
    RELEASE0: {"sqs:GetQueueUrl", "sqs:ReceiveMessage", "sqs:DeleteMessage"},
    RELEASE1: {"sqs:GetQueueUrl", "sqs:ReceiveMessage", "sqs:DeleteMessage"},
    DLQ: {"sqs:GetQueueUrl"},
    STATE: {"sqs:GetQueueUrl", "sqs:ReceiveMessage"},
    # Looked up by open(); nothing else.
    LEASE: {"sqs:GetQueueUrl"},
}

# The operator commands (crates/cli/src/commands.rs -> admin.rs):
# * setup: GetQueueUrl of the six queues, ListQueueTags if they exist;
#   CreateQueue of the six queues (and the lease token), the check-in queue with its
#   configuration tags (SQS requires TagQueue for tags on creation);
#   GetQueueAttributes (QueueArn) of the dead-letter queue for the redrive
#   policy; the same lookups and ListQueueTags again. On a barrier set up
#   by an earlier version (no state queue): CreateQueue of the state queue
#   only.
# * teardown: GetQueueUrl of the standard and FIFO names; DeleteQueue.
# * status: open (ReceiveMessage of the state queue; ListQueueTags only if
#   it holds no state); state reads (ReceiveMessage) before and after a
#   probe (SendMessage on the check-in queue); GetQueueAttributes
#   (ApproximateNumberOfMessages) of the DLQ.
# * abort: open; SendMessage on the check-in queue.
# * queues: ListQueues ("*" only) and GetQueueAttributes of each queue.
# * dead letters: no command; ReceiveMessage/DeleteMessage by hand.
OPERATOR_ACTIONS = {
    CHECKIN: {
        "sqs:GetQueueUrl",
        "sqs:CreateQueue",
        "sqs:DeleteQueue",
        "sqs:GetQueueAttributes",
        "sqs:TagQueue",
        "sqs:ListQueueTags",
        "sqs:SendMessage",
    },
    RELEASE0: {"sqs:GetQueueUrl", "sqs:CreateQueue", "sqs:DeleteQueue", "sqs:GetQueueAttributes"},
    RELEASE1: {"sqs:GetQueueUrl", "sqs:CreateQueue", "sqs:DeleteQueue", "sqs:GetQueueAttributes"},
    DLQ: {
        "sqs:GetQueueUrl",
        "sqs:CreateQueue",
        "sqs:DeleteQueue",
        "sqs:GetQueueAttributes",
        "sqs:ReceiveMessage",
        "sqs:DeleteMessage",
    },
    STATE: {
        "sqs:GetQueueUrl",
        "sqs:CreateQueue",
        "sqs:DeleteQueue",
        "sqs:GetQueueAttributes",
        "sqs:ReceiveMessage",
        "sqs:SendMessage",
    },
    # setup creates it and puts the token; teardown deletes it.
    LEASE: {
        "sqs:GetQueueUrl",
        "sqs:CreateQueue",
        "sqs:DeleteQueue",
        "sqs:GetQueueAttributes",
        "sqs:SendMessage",
    },
}


def lookup_only_names(name: str, fifo: bool, principal: str) -> set[str]:
    """Queue names a principal may look up (GetQueueUrl) although the
    barrier has no such queue. Without the grant SQS answers AccessDenied,
    not "no such queue", and the lookup fails."""
    if principal == "operators":
        # teardown looks up both variants of the check-in and DLQ names.
        other = "" if fifo else ".fifo"
        return {f"{name}-checkin{other}", f"{name}-dlq{other}"}
    # open() looks up NAME-checkin before NAME-checkin.fifo.
    return {f"{name}-checkin"} if fifo else set()


# --------------------------------------------------------------------------
# Resolving the template for one barrier


class Resolver:
    def __init__(self, template: dict, params: dict, pseudo: dict):
        self.t = template
        self.params = {k: str(v.get("Default", "")) for k, v in template["Parameters"].items()}
        self.params.update(params)
        self.pseudo = pseudo
        self.conditions = {}
        for name, expr in template.get("Conditions", {}).items():
            self.conditions[name] = self.condition(expr)

    def condition(self, expr):
        if isinstance(expr, dict) and len(expr) == 1:
            (fn, arg), = expr.items()
            if fn == "Fn::Equals":
                a, b = (self.value(x) for x in arg)
                return str(a) == str(b)
            if fn == "Fn::Not":
                return not self.condition(arg[0])
            if fn == "Fn::And":
                return all(self.condition(x) for x in arg)
            if fn == "Fn::Or":
                return any(self.condition(x) for x in arg)
            if fn == "Condition":
                return self.conditions[arg]
        raise AssertionError(f"unsupported condition {expr!r}")

    NO_VALUE = object()

    def ref(self, name):
        if name == "AWS::NoValue":
            return self.NO_VALUE
        if name in self.pseudo:
            return self.pseudo[name]
        if name in self.params:
            return self.params[name]
        assert name in self.t["Resources"], f"Ref to unknown {name}"
        return f"<ref {name}>"

    def sub(self, text, variables):
        out, i = [], 0
        while i < len(text):
            j = text.find("${", i)
            if j < 0:
                out.append(text[i:])
                break
            out.append(text[i:j])
            k = text.index("}", j)
            key = text[j + 2 : k]
            if key.startswith("!"):
                out.append("${" + key[1:] + "}")
            elif key in variables:
                out.append(str(variables[key]))
            elif "." in key:
                out.append(f"<getatt {key}>")
            else:
                out.append(str(self.ref(key)))
            i = k + 1
        return "".join(out)

    def value(self, node):
        if isinstance(node, dict):
            if len(node) == 1:
                (fn, arg), = node.items()
                if fn == "Ref":
                    return self.ref(arg)
                if fn == "Fn::Sub":
                    if isinstance(arg, str):
                        return self.sub(arg, {})
                    text, variables = arg
                    return self.sub(text, {k: self.value(v) for k, v in variables.items()})
                if fn == "Fn::FindInMap":
                    m, k1, k2 = (self.value(x) for x in arg)
                    return self.t["Mappings"][m][k1][k2]
                if fn == "Fn::If":
                    cond, yes, no = arg
                    return self.value(yes if self.conditions[cond] else no)
                if fn == "Fn::GetAtt":
                    target = arg if isinstance(arg, str) else ".".join(arg)
                    return f"<getatt {target}>"
                if fn == "Fn::Join":
                    sep, parts = arg
                    return sep.join(str(self.value(p)) for p in parts)
                assert not fn.startswith("Fn::"), f"unsupported intrinsic {fn}"
            out = {}
            for k, v in node.items():
                v = self.value(v)
                if v is not self.NO_VALUE:
                    out[k] = v
            return out
        if isinstance(node, list):
            return [v for v in (self.value(x) for x in node) if v is not self.NO_VALUE]
        return node

    def resources(self) -> dict:
        out = {}
        for name, res in self.t["Resources"].items():
            if "Condition" in res and not self.conditions[res["Condition"]]:
                continue
            out[name] = {"Type": res["Type"], "Properties": self.value(res.get("Properties", {}))}
        return out


def listify(x):
    return x if isinstance(x, list) else [x]


def statements(resources: dict, resource_name: str) -> list[dict]:
    res = resources[resource_name]
    props = res["Properties"]
    if res["Type"] == "AWS::IAM::ManagedPolicy":
        docs = [props["PolicyDocument"]]
    else:
        docs = [p["PolicyDocument"] for p in props.get("Policies", [])]
    out = []
    for doc in docs:
        for st in doc["Statement"]:
            assert st["Effect"] == "Allow", st
            assert "NotAction" not in st and "NotResource" not in st and "Condition" not in st, st
            for action in listify(st["Action"]):
                assert "*" not in action and "?" not in action, f"wildcard action {action}"
            for arn in listify(st["Resource"]):
                if arn != "*":
                    assert "*" not in arn and "?" not in arn, f"wildcard resource {arn}"
            out.append(st)
    return out


def grants(stmts: list[dict], prefix: str = "sqs:") -> set[tuple[str, str]]:
    """(action, resource) pairs, for actions starting with prefix."""
    return {
        (a, r)
        for st in stmts
        for a in listify(st["Action"])
        if a.startswith(prefix)
        for r in listify(st["Resource"])
    }


# --------------------------------------------------------------------------
# The barrier on the embedded endpoint


def cli(endpoint_url: str, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(_server_binary()), *args],
        env=cli_env(endpoint_url),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def setup_barrier(endpoint_url: str, name: str, fifo: bool, parties: int = 3):
    args = ["setup", "--barrier", name, "--parties", str(parties)]
    if fifo:
        args.append("--fifo")
    r = cli(endpoint_url, *args)
    assert r.returncode == 0, r.stderr


@pytest.fixture(params=[False, True], ids=["standard", "fifo"])
def barrier(request, endpoint_url):
    """A barrier set up by the real `sqs-barrier setup`: its name, whether it
    is FIFO, its queues (name -> attributes) and the resolved template."""
    fifo = request.param
    name = f"deploy-{uuid.uuid4().hex[:10]}"
    setup_barrier(endpoint_url, name, fifo)
    sqs = make_client(endpoint_url)
    urls = sqs.list_queues(QueueNamePrefix=f"{name}-").get("QueueUrls", [])
    queues = {}
    for url in urls:
        attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
        queues[url.rsplit("/", 1)[1]] = attrs
    arn = next(iter(queues.values()))["QueueArn"]
    _, partition, _, region, account, _ = arn.split(":")
    resolver = Resolver(
        load_cfn_yaml(str(TEMPLATE)),
        {"BarrierName": name, "Fifo": "true" if fifo else "false"},
        {"AWS::Partition": partition, "AWS::Region": region, "AWS::AccountId": account},
    )
    yield {
        "name": name,
        "fifo": fifo,
        "queues": queues,
        "arn_prefix": f"arn:{partition}:sqs:{region}:{account}:",
        "resources": resolver.resources(),
    }
    cli(endpoint_url, "teardown", "--barrier", name)


def roles_of(b) -> dict[str, str]:
    """Queue role -> the queue name `setup` created for it."""
    name, sfx = b["name"], ".fifo" if b["fifo"] else ""
    roles = {
        CHECKIN: f"{name}-checkin{sfx}",
        RELEASE0: f"{name}-release-0",
        RELEASE1: f"{name}-release-1",
        DLQ: f"{name}-dlq{sfx}",
        STATE: f"{name}-state",  # standard for FIFO barriers too
        LEASE: f"{name}-lease.fifo",  # FIFO for standard barriers too
    }
    assert set(roles.values()) == set(b["queues"]), "setup created other queues than expected"
    return roles


def expected_grants(b, by_role: dict[str, set[str]], principal: str) -> set[tuple[str, str]]:
    roles = roles_of(b)
    out = {(a, b["arn_prefix"] + roles[role]) for role, actions in by_role.items() for a in actions}
    out |= {
        ("sqs:GetQueueUrl", b["arn_prefix"] + q)
        for q in lookup_only_names(b["name"], b["fifo"], principal)
    }
    if principal == "operators":
        out.add(("sqs:ListQueues", "*"))
    return out


# --------------------------------------------------------------------------
# Static checks against the queues setup created


def test_every_queue_the_template_names_exists(barrier):
    b = barrier
    existing = {b["arn_prefix"] + q for q in b["queues"]}
    res = b["resources"]
    for principal, resource in [
        ("function", "FunctionRole"),
        ("participants", "ParticipantsPolicy"),
        ("operators", "OperatorsPolicy"),
    ]:
        lookups = {b["arn_prefix"] + q for q in lookup_only_names(b["name"], b["fifo"], principal)}
        assert not lookups & existing
        for action, arn in grants(statements(res, resource)):
            if arn == "*":
                assert action == "sqs:ListQueues", f"{resource}: {action} on *"
            elif action == "sqs:GetQueueUrl":
                assert arn in existing | lookups, f"{resource}: {action} on {arn}"
            else:
                assert arn in existing, f"{resource}: {action} on {arn}, which setup did not create"
    mapping = res["CheckinMapping"]["Properties"]
    assert mapping["EventSourceArn"] == b["arn_prefix"] + roles_of(b)[CHECKIN]
    alarm = res["DeadLetterAlarm"]["Properties"]
    assert alarm["Dimensions"] == [{"Name": "QueueName", "Value": roles_of(b)[DLQ]}]
    # The alarm watches the queue the check-in queue's redrive policy names.
    redrive = json.loads(b["queues"][roles_of(b)[CHECKIN]]["RedrivePolicy"])
    assert redrive["deadLetterTargetArn"] == b["arn_prefix"] + roles_of(b)[DLQ]
    # The template names the state queue without the FIFO suffix: it is a
    # standard queue whatever the barrier.
    assert b["queues"][roles_of(b)[STATE]].get("FifoQueue", "false") == "false"


def test_function_role_grants_exactly_the_coordinators_actions(barrier):
    b = barrier
    stmts = statements(b["resources"], "FunctionRole")
    assert grants(stmts) == expected_grants(b, FUNCTION_ACTIONS, "function")
    logs = grants(stmts, prefix="logs:")
    assert logs == {
        ("logs:CreateLogStream", "<getatt LogGroup.Arn>"),
        ("logs:PutLogEvents", "<getatt LogGroup.Arn>"),
    }
    assert {a for st in stmts for a in listify(st["Action"])} <= {
        a for a, _ in grants(stmts) | logs
    }


def test_participants_policy_grants_exactly_what_wait_needs(barrier):
    b = barrier
    stmts = statements(b["resources"], "ParticipantsPolicy")
    assert grants(stmts, prefix="") == expected_grants(b, PARTICIPANT_ACTIONS, "participants")


def test_operators_policy_grants_exactly_what_the_commands_need(barrier):
    b = barrier
    stmts = statements(b["resources"], "OperatorsPolicy")
    assert grants(stmts, prefix="") == expected_grants(b, OPERATOR_ACTIONS, "operators")


def test_mapping_timeout_and_schedule_fit_the_queues(barrier):
    b = barrier
    res = b["resources"]
    checkin = b["queues"][roles_of(b)[CHECKIN]]
    mapping = res["CheckinMapping"]["Properties"]
    assert mapping["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert mapping["ScalingConfig"] == {"MaximumConcurrency": 2}
    assert 1 <= mapping["BatchSize"] <= 10  # FIFO maximum; standard without a window
    if b["fifo"]:
        assert "MaximumBatchingWindowInSeconds" not in mapping
        assert checkin.get("FifoQueue") == "true"
    else:
        assert mapping["MaximumBatchingWindowInSeconds"] == 0
    fn = res["Function"]["Properties"]
    assert fn["Runtime"] == "provided.al2023" and fn["Handler"] == "bootstrap"
    assert fn["Architectures"] == ["arm64"]
    # Lambda's advice: visibility timeout >= 6 x function timeout.
    assert 6 * int(fn["Timeout"]) <= int(checkin["VisibilityTimeout"])
    # The tick names this barrier, and the heartbeat the function promises
    # matches the schedule's rate.
    rule = res["TickRule"]["Properties"]
    assert rule["ScheduleExpression"] == "rate(1 minute)"
    assert json.loads(rule["Targets"][0]["Input"]) == {"barrier": b["name"]}
    assert fn["Environment"]["Variables"]["SQS_BARRIER_HEARTBEAT_SECS"] == "60"


# --------------------------------------------------------------------------
# Dynamic check: the real commands through a recording proxy


BATCH_ACTIONS = {
    "SendMessageBatch": "SendMessage",
    "DeleteMessageBatch": "DeleteMessage",
    "ChangeMessageVisibilityBatch": "ChangeMessageVisibility",
}


class RecordingProxy:
    """Forwards AWS JSON 1.0 SQS requests to the endpoint and records the
    IAM action and queue of each one."""

    def __init__(self, upstream: str):
        up = urlsplit(upstream)
        self.host, self.port = up.hostname, up.port
        self.calls: list[tuple[str, str]] = []
        self.lock = threading.Lock()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                proxy.record(self.headers.get("X-Amz-Target", ""), body)
                conn = http.client.HTTPConnection(proxy.host, proxy.port, timeout=60)
                headers = {
                    k: v
                    for k, v in self.headers.items()
                    if k.lower() not in ("host", "connection", "content-length")
                }
                conn.request("POST", self.path, body=body, headers=headers)
                resp = conn.getresponse()
                data = resp.read()
                conn.close()
                self.send_response(resp.status)
                for k, v in resp.getheaders():
                    if k.lower() not in ("connection", "content-length", "transfer-encoding", "date", "server"):
                        self.send_header(k, v)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def record(self, target: str, body: bytes):
        op = target.rsplit(".", 1)[-1]
        req = json.loads(body or b"{}")
        if "QueueUrl" in req:
            queue = req["QueueUrl"].rstrip("/").rsplit("/", 1)[1]
        elif "QueueName" in req:
            queue = req["QueueName"]
        else:
            queue = "*"
        actions = ["sqs:" + BATCH_ACTIONS.get(op, op)]
        if op == "CreateQueue" and req.get("tags"):
            actions.append("sqs:TagQueue")  # SQS requires it for tags on creation
        with self.lock:
            self.calls.extend((a, queue) for a in actions)

    def take(self) -> set[tuple[str, str]]:
        with self.lock:
            calls, self.calls = set(self.calls), []
        return calls

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def denied(calls, allowed, arn_prefix):
    return sorted(
        (a, q) for a, q in calls if (a, "*" if q == "*" else arn_prefix + q) not in allowed
    )


def resolve_for(sqs, name: str, fifo: bool, queue: str):
    """The ARN prefix of the endpoint's queues (read from `queue`, which
    must exist) and the template's resources resolved for barrier `name`."""
    arn = sqs.get_queue_attributes(
        QueueUrl=sqs.get_queue_url(QueueName=queue)["QueueUrl"],
        AttributeNames=["QueueArn"],
    )["Attributes"]["QueueArn"]
    _, partition, _, region, account, _ = arn.split(":")
    res = Resolver(
        load_cfn_yaml(str(TEMPLATE)),
        {"BarrierName": name, "Fifo": "true" if fifo else "false"},
        {"AWS::Partition": partition, "AWS::Region": region, "AWS::AccountId": account},
    ).resources()
    return f"arn:{partition}:sqs:{region}:{account}:", res


@pytest.mark.parametrize("fifo", [False, True], ids=["standard", "fifo"])
def test_real_commands_stay_within_the_policies(endpoint_url, fifo):
    """setup, a coordinator, three `wait`s, status, queues, abort and
    teardown, each principal through a recording proxy of its own; every
    request must be one its policy allows. The coordinator is the process
    coordinator: it shares the library code (state reads and writes,
    notices, sweeps, dead letters) with the Lambda function, but not the
    event source mapping's polling, so this checks the function role's SQS
    grants only as far as that shared code goes."""
    name = f"deploy-{uuid.uuid4().hex[:10]}"
    operator, coord, participant = (RecordingProxy(endpoint_url) for _ in range(3))
    coordinator = None
    try:
        r = cli(operator.url, "setup", "--barrier", name, "--parties", "1", *(["--fifo"] if fifo else []))
        assert r.returncode == 0, r.stderr

        sqs = make_client(endpoint_url)
        arn_prefix, res = resolve_for(sqs, name, fifo, f"{name}-release-0")

        coordinator = subprocess.Popen(
            [str(_server_binary()), "coordinator", "--barrier", name],
            env=cli_env(coord.url),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        # Three phases: the second and third releases sweep the queue the
        # next phase reads, which then holds an older notice.
        for phase in ("0", "1", "2"):
            r = cli(participant.url, "wait", "--barrier", name, "--id", "0", "--phase", phase, "--timeout", "30")
            assert r.returncode == 0, r.stderr
        for cmd in (
            ["status", "--barrier", name],
            ["queues", "--prefix", f"{name}-"],
            ["abort", "--barrier", name, "--reason", "test"],
        ):
            r = cli(operator.url, *cmd)
            assert r.returncode == 0, (cmd, r.stderr)
        coordinator.terminate()
        coordinator.wait(timeout=15)
        r = cli(operator.url, "teardown", "--barrier", name)
        assert r.returncode == 0, r.stderr

        checks = [
            ("participants", participant, "ParticipantsPolicy", ""),
            ("operators", operator, "OperatorsPolicy", ""),
            ("coordinator", coord, "FunctionRole", "sqs:"),
        ]
        problems = {}
        for who, proxy, resource, prefix in checks:
            calls = proxy.take()
            assert calls, f"the {who}' proxy recorded nothing"
            allowed = grants(statements(res, resource), prefix=prefix)
            if bad := denied(calls, allowed, arn_prefix):
                problems[who] = bad
        assert not problems, f"requests their policy denies: {problems}"
    finally:
        if coordinator is not None and coordinator.poll() is None:
            coordinator.kill()
            coordinator.wait()
        for proxy in (operator, coord, participant):
            proxy.close()


def setup_as_an_earlier_version(sqs, name: str, fifo: bool, parties: int) -> None:
    """Creates barrier `name` as `setup` did before the state queue: the
    dead-letter, check-in and release queues, and the configuration in the
    check-in queue's tags (docs/PROTOCOL.md section 3, "Stored
    configuration"), directly on the endpoint."""
    fifo_attrs = {"FifoQueue": "true"} if fifo else {}
    sfx = ".fifo" if fifo else ""
    common = {"SqsManagedSseEnabled": "true", "ReceiveMessageWaitTimeSeconds": "20"}
    dlq = sqs.create_queue(
        QueueName=f"{name}-dlq{sfx}",
        Attributes={**common, **fifo_attrs, "MessageRetentionPeriod": "1209600"},
    )["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    config = {"v": 1, "name": name, "instance": uuid.uuid4().hex[:16], "parties": parties, "fifo": fifo}
    b64 = base64.b64encode(json.dumps(config, separators=(",", ":")).encode()).decode()
    chunks = [b64[i : i + 256] for i in range(0, len(b64), 256)]
    tags = {f"sqs-barrier.config.{i}": c for i, c in enumerate(chunks)}
    tags["sqs-barrier.config.n"] = str(len(chunks))
    sqs.create_queue(
        QueueName=f"{name}-checkin{sfx}",
        Attributes={
            **common,
            **fifo_attrs,
            "MessageRetentionPeriod": "1209600",
            "VisibilityTimeout": "30",
            "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": "100"}),
        },
        tags=tags,
    )
    for i in (0, 1):
        sqs.create_queue(
            QueueName=f"{name}-release-{i}",
            Attributes={**common, "MessageRetentionPeriod": "60", "VisibilityTimeout": "0"},
        )


@pytest.mark.parametrize("fifo", [False, True], ids=["standard", "fifo"])
def test_upgrading_a_barrier_stays_within_the_policies(endpoint_url, fifo):
    """A barrier set up by an earlier version has no state queue. A
    participant's `wait` then fails with the error that says so (its lookup
    of NAME-state is allowed, so SQS answers "no such queue", not
    AccessDenied); the operators' `setup` with the same rules adds the
    queue, as docs/DEPLOY.md ("Updating") tells them to. Neither makes a
    request its policy denies."""
    name = f"deploy-{uuid.uuid4().hex[:10]}"
    sqs = make_client(endpoint_url)
    setup_as_an_earlier_version(sqs, name, fifo, parties=1)
    operator, participant = RecordingProxy(endpoint_url), RecordingProxy(endpoint_url)
    try:
        arn_prefix, res = resolve_for(sqs, name, fifo, f"{name}-release-0")

        r = cli(participant.url, "wait", "--barrier", name, "--id", "0", "--phase", "0", "--timeout", "10")
        assert r.returncode == 6, (r.returncode, r.stderr)
        assert "earlier version" in r.stderr and f"{name}-state" in r.stderr, r.stderr

        r = cli(operator.url, "setup", "--barrier", name, "--parties", "1", *(["--fifo"] if fifo else []))
        assert r.returncode == 0, r.stderr
        state = sqs.get_queue_attributes(
            QueueUrl=sqs.get_queue_url(QueueName=f"{name}-state")["QueueUrl"], AttributeNames=["All"]
        )["Attributes"]
        assert state.get("FifoQueue", "false") == "false"
        assert {k: state.get(k) for k in ("SqsManagedSseEnabled", "ReceiveMessageWaitTimeSeconds",
                                          "MessageRetentionPeriod", "VisibilityTimeout")} == {
            "SqsManagedSseEnabled": "true",
            "ReceiveMessageWaitTimeSeconds": "20",
            "MessageRetentionPeriod": "1209600",
            "VisibilityTimeout": "0",
        }
        assert ("sqs:CreateQueue", f"{name}-state") in operator.calls
        assert ("sqs:CreateQueue", f"{name}-lease.fifo") in operator.calls

        r = cli(operator.url, "teardown", "--barrier", name)
        assert r.returncode == 0, r.stderr

        problems = {}
        for who, proxy, resource in [
            ("participants", participant, "ParticipantsPolicy"),
            ("operators", operator, "OperatorsPolicy"),
        ]:
            calls = proxy.take()
            assert calls, f"the {who}' proxy recorded nothing"
            allowed = grants(statements(res, resource), prefix="")
            if bad := denied(calls, allowed, arn_prefix):
                problems[who] = bad
        assert not problems, f"requests their policy denies: {problems}"
    finally:
        for proxy in (operator, participant):
            proxy.close()

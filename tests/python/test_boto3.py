"""The embedded SQS endpoint driven by boto3, a client this project did not
write, plus raw-HTTP robustness checks.

Expected behaviour is what the AWS SQS API reference documents. Timeouts are
small (visibility 1-2 s, waits of 1-5 s) so the suite stays fast.
"""

import contextlib
import hashlib
import http.client
import json
import struct
import subprocess
import threading
import time
from urllib.parse import urlsplit

import boto3
import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials
from botocore.exceptions import ClientError

from conftest import STARTUP_TIMEOUT_S, _read_first_line, _server_binary, make_client

# --------------------------------------------------------------------------
# helpers


def md5_hex(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def md5_of_attributes(attributes: dict) -> str:
    """MD5 of message attributes as AWS documents it: sorted by name; each
    name, data type and value length-prefixed (4 bytes, big-endian), with a
    transport byte 1 (string) or 2 (binary) before the value."""

    def put(buf: bytearray, data: bytes) -> None:
        buf += struct.pack(">I", len(data)) + data

    buf = bytearray()
    for name in sorted(attributes):
        value = attributes[name]
        put(buf, name.encode())
        put(buf, value["DataType"].encode())
        if "BinaryValue" in value:
            buf.append(2)
            put(buf, value["BinaryValue"])
        else:
            buf.append(1)
            put(buf, value["StringValue"].encode())
    return md5_hex(bytes(buf))


def receive(sqs, url, max_messages=10, wait=1, visibility=None):
    kwargs = dict(
        QueueUrl=url,
        MaxNumberOfMessages=max_messages,
        WaitTimeSeconds=wait,
        MessageSystemAttributeNames=["All"],
        MessageAttributeNames=["All"],
    )
    if visibility is not None:
        kwargs["VisibilityTimeout"] = visibility
    return sqs.receive_message(**kwargs).get("Messages", [])


def receive_n(sqs, url, count, visibility=None, within_s=5.0):
    """Receives until count messages came or within_s passed: one empty short
    poll proves nothing on SQS."""
    got = []
    deadline = time.monotonic() + within_s
    while len(got) < count and time.monotonic() < deadline:
        got += receive(sqs, url, min(10, count - len(got)), 1, visibility)
    return got


def error_code(excinfo) -> str:
    return excinfo.value.response["Error"]["Code"]


# --------------------------------------------------------------------------
# queues


def test_queue_lifecycle(sqs, unique):
    name = unique("life")
    url = sqs.create_queue(QueueName=name, Attributes={"VisibilityTimeout": "5"})["QueueUrl"]
    assert url.endswith("/" + name)
    assert sqs.get_queue_url(QueueName=name)["QueueUrl"] == url
    assert url in sqs.list_queues(QueueNamePrefix=name).get("QueueUrls", [])

    attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    assert attrs["QueueArn"].startswith("arn:aws:sqs:us-east-1:")
    assert attrs["QueueArn"].endswith(":" + name)
    assert attrs["VisibilityTimeout"] == "5"
    assert attrs["ApproximateNumberOfMessages"] == "0"
    int(attrs["CreatedTimestamp"])  # whole epoch seconds

    sqs.set_queue_attributes(QueueUrl=url, Attributes={"DelaySeconds": "2"})
    one = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["DelaySeconds"])["Attributes"]
    assert one == {"DelaySeconds": "2"}

    sqs.delete_queue(QueueUrl=url)
    deadline = time.monotonic() + 5
    with pytest.raises(sqs.exceptions.QueueDoesNotExist):
        while time.monotonic() < deadline:  # deletion "takes up to 60 seconds" on AWS
            sqs.get_queue_url(QueueName=name)
            time.sleep(0.1)


def test_create_queue_name_exists_with_other_attributes(sqs, unique):
    name = unique("exists")
    first = sqs.create_queue(QueueName=name, Attributes={"VisibilityTimeout": "5"})
    again = sqs.create_queue(QueueName=name, Attributes={"VisibilityTimeout": "5"})
    assert first["QueueUrl"] == again["QueueUrl"]
    with pytest.raises(sqs.exceptions.QueueNameExists):
        sqs.create_queue(QueueName=name, Attributes={"VisibilityTimeout": "6"})


def test_missing_queue_is_typed(sqs, unique):
    with pytest.raises(sqs.exceptions.QueueDoesNotExist):
        sqs.get_queue_url(QueueName=unique("missing"))
    url = sqs.create_queue(QueueName=unique("present"))["QueueUrl"]
    sqs.delete_queue(QueueUrl=url)
    with pytest.raises(sqs.exceptions.QueueDoesNotExist):
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            sqs.send_message(QueueUrl=url, MessageBody="x")
            time.sleep(0.1)


def test_list_queues_pages(sqs, unique):
    prefix = unique("pages")
    urls = sorted(sqs.create_queue(QueueName=f"{prefix}-{i}")["QueueUrl"] for i in range(5))
    seen, token, pages = [], None, 0
    while True:
        kwargs = {"QueueNamePrefix": prefix, "MaxResults": 2}
        if token:
            kwargs["NextToken"] = token
        page = sqs.list_queues(**kwargs)
        pages += 1
        assert len(page.get("QueueUrls", [])) <= 2
        seen += page.get("QueueUrls", [])
        token = page.get("NextToken")
        if not token:
            break
        assert pages < 10
    assert sorted(seen) == urls
    assert pages == 3


def test_tags(sqs, unique):
    url = sqs.create_queue(QueueName=unique("tags"), tags={"team": "infra"})["QueueUrl"]
    sqs.tag_queue(QueueUrl=url, Tags={"env": "test"})
    assert sqs.list_queue_tags(QueueUrl=url)["Tags"] == {"team": "infra", "env": "test"}
    sqs.untag_queue(QueueUrl=url, TagKeys=["team"])
    assert sqs.list_queue_tags(QueueUrl=url)["Tags"] == {"env": "test"}


def test_purge_queue_in_progress(sqs, unique):
    url = sqs.create_queue(QueueName=unique("purge"))["QueueUrl"]
    sqs.send_message(QueueUrl=url, MessageBody="x")
    sqs.purge_queue(QueueUrl=url)
    assert receive(sqs, url, wait=1) == []
    with pytest.raises(sqs.exceptions.PurgeQueueInProgress):
        sqs.purge_queue(QueueUrl=url)


# --------------------------------------------------------------------------
# messages

ATTRIBUTES = {
    "text": {"DataType": "String", "StringValue": "grüße"},
    "count": {"DataType": "Number", "StringValue": "42"},
    "raw": {"DataType": "Binary", "BinaryValue": b"\x00\x01\xff"},
}


def test_send_receive_delete_with_message_attributes(sqs, unique):
    url = sqs.create_queue(QueueName=unique("attrs"))["QueueUrl"]
    body = "hello from boto3"
    sent = sqs.send_message(QueueUrl=url, MessageBody=body, MessageAttributes=ATTRIBUTES)
    assert sent["MD5OfMessageBody"] == md5_hex(body.encode())
    assert sent["MD5OfMessageAttributes"] == md5_of_attributes(ATTRIBUTES)

    (message,) = receive_n(sqs, url, 1, visibility=1)
    assert message["MessageId"] == sent["MessageId"]
    assert message["Body"] == body
    assert message["MD5OfBody"] == md5_hex(body.encode())
    assert message["MD5OfMessageAttributes"] == md5_of_attributes(ATTRIBUTES)
    assert message["MessageAttributes"] == ATTRIBUTES
    assert message["Attributes"]["ApproximateReceiveCount"] == "1"

    sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
    time.sleep(1.2)
    assert receive(sqs, url, wait=1) == [], "deleted message came back"

    with pytest.raises(sqs.exceptions.ReceiptHandleIsInvalid):
        sqs.delete_message(QueueUrl=url, ReceiptHandle="not-a-receipt-handle")


def test_visibility_timeout_redelivers(sqs, unique):
    url = sqs.create_queue(QueueName=unique("vis"))["QueueUrl"]
    sqs.send_message(QueueUrl=url, MessageBody="again")
    (first,) = receive_n(sqs, url, 1, visibility=1)
    assert receive(sqs, url, wait=0) == []
    time.sleep(1.2)
    (second,) = receive_n(sqs, url, 1, visibility=30)
    assert second["MessageId"] == first["MessageId"]
    assert second["ReceiptHandle"] != first["ReceiptHandle"]
    assert second["Attributes"]["ApproximateReceiveCount"] == "2"
    sqs.change_message_visibility(
        QueueUrl=url, ReceiptHandle=second["ReceiptHandle"], VisibilityTimeout=0
    )
    assert len(receive_n(sqs, url, 1)) == 1, "visible after ChangeMessageVisibility(0)"


def test_batches_and_their_typed_errors(sqs, unique):
    url = sqs.create_queue(QueueName=unique("batch"))["QueueUrl"]
    out = sqs.send_message_batch(
        QueueUrl=url,
        Entries=[{"Id": "a", "MessageBody": "alpha"}, {"Id": "b", "MessageBody": "beta"}],
    )
    assert sorted(s["Id"] for s in out["Successful"]) == ["a", "b"]
    assert not out.get("Failed")
    for entry in out["Successful"]:
        body = {"a": "alpha", "b": "beta"}[entry["Id"]]
        assert entry["MD5OfMessageBody"] == md5_hex(body.encode())

    got = receive_n(sqs, url, 2, visibility=30)
    assert sorted(m["Body"] for m in got) == ["alpha", "beta"]
    changed = sqs.change_message_visibility_batch(
        QueueUrl=url,
        Entries=[
            {"Id": "ok", "ReceiptHandle": got[0]["ReceiptHandle"], "VisibilityTimeout": 20},
            {"Id": "bad", "ReceiptHandle": "garbage", "VisibilityTimeout": 20},
        ],
    )
    assert [s["Id"] for s in changed["Successful"]] == ["ok"]
    assert [(f["Id"], f["Code"]) for f in changed["Failed"]] == [("bad", "ReceiptHandleIsInvalid")]

    deleted = sqs.delete_message_batch(
        QueueUrl=url,
        Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(got)]
        + [{"Id": "bad", "ReceiptHandle": "garbage"}],
    )
    assert sorted(s["Id"] for s in deleted["Successful"]) == ["0", "1"]
    (failed,) = deleted["Failed"]
    assert failed["Id"] == "bad"
    assert failed["Code"] == "ReceiptHandleIsInvalid"
    assert failed["SenderFault"] is True

    with pytest.raises(sqs.exceptions.TooManyEntriesInBatchRequest):
        sqs.send_message_batch(
            QueueUrl=url, Entries=[{"Id": f"e{i}", "MessageBody": "x"} for i in range(11)]
        )
    with pytest.raises(sqs.exceptions.BatchEntryIdsNotDistinct):
        sqs.send_message_batch(
            QueueUrl=url,
            Entries=[{"Id": "same", "MessageBody": "1"}, {"Id": "same", "MessageBody": "2"}],
        )
    with pytest.raises(sqs.exceptions.EmptyBatchRequest):
        sqs.send_message_batch(QueueUrl=url, Entries=[])
    with pytest.raises(sqs.exceptions.EmptyBatchRequest):
        sqs.delete_message_batch(QueueUrl=url, Entries=[])


def test_long_poll_wakes_up_on_send_from_another_thread(sqs, endpoint_url, unique):
    url = sqs.create_queue(QueueName=unique("longpoll"))["QueueUrl"]
    other = make_client(endpoint_url)  # each thread gets its own client

    def send_later():
        time.sleep(0.5)
        other.send_message(QueueUrl=url, MessageBody="wake")

    sender = threading.Thread(target=send_later)
    start = time.monotonic()
    sender.start()
    got = receive(sqs, url, max_messages=1, wait=5)
    elapsed = time.monotonic() - start
    sender.join()
    assert [m["Body"] for m in got] == ["wake"]
    assert elapsed < 3.0, f"long poll returned after {elapsed:.2f} s"

    # "wake" is in flight now, so this long poll finds nothing and waits.
    start = time.monotonic()
    assert receive(sqs, url, wait=1) == []
    elapsed = time.monotonic() - start
    assert 0.9 <= elapsed < 4.0, f"empty long poll of 1 s took {elapsed:.2f} s"


def test_fifo_basics(sqs, unique):
    url = sqs.create_queue(
        QueueName=unique("basics.fifo"),
        Attributes={"FifoQueue": "true", "ContentBasedDeduplication": "true"},
    )["QueueUrl"]
    attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    assert attrs["FifoQueue"] == "true"

    with pytest.raises(ClientError) as excinfo:
        sqs.send_message(QueueUrl=url, MessageBody="no group")
    assert error_code(excinfo) == "MissingParameter"

    numbers = []
    for body in ["1", "2", "3", "3"]:  # the repeated body is deduplicated
        out = sqs.send_message(QueueUrl=url, MessageBody=body, MessageGroupId="g")
        numbers.append(int(out["SequenceNumber"]))
    assert numbers[0] < numbers[1] < numbers[2]

    first = receive(sqs, url, max_messages=1, visibility=30)
    assert [m["Body"] for m in first] == ["1"]
    assert receive(sqs, url, wait=0, visibility=30) == [], "group blocked while 1 in flight"
    sqs.delete_message(QueueUrl=url, ReceiptHandle=first[0]["ReceiptHandle"])
    rest = receive_n(sqs, url, 2, visibility=30)
    assert [m["Body"] for m in rest] == ["2", "3"]
    assert [m["Attributes"]["MessageGroupId"] for m in rest] == ["g", "g"]
    assert receive(sqs, url, wait=0) == [], "the repeated '3' was deduplicated"


def test_fifo_name_requires_fifo_attribute(sqs, unique):
    with pytest.raises(ClientError):
        sqs.create_queue(QueueName=unique("plain"), Attributes={"FifoQueue": "true"})


# --------------------------------------------------------------------------
# raw HTTP: malformed requests get a JSON error, and the server lives on


def signed_post(endpoint_url: str, target: str, body: bytes):
    """POSTs a SigV4-signed AWS JSON 1.0 request; returns (status, body)."""
    status, _, answer = signed_post_with_headers(endpoint_url, target, body)
    return status, answer


def signed_post_with_headers(endpoint_url: str, target: str, body: bytes):
    """Like signed_post; returns (status, headers with lower-case names, body)."""
    headers = {
        "Content-Type": "application/x-amz-json-1.0",
        "X-Amz-Target": target,
    }
    request = AWSRequest(method="POST", url=endpoint_url + "/", data=body, headers=headers)
    SigV4Auth(Credentials("test", "test"), "sqs", "us-east-1").add_auth(request)
    parts = urlsplit(endpoint_url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    try:
        try:
            conn.request("POST", "/", body=body, headers=dict(request.headers))
        except (BrokenPipeError, ConnectionResetError):
            pass  # a server may answer and close before reading a huge body
        response = conn.getresponse()
        headers = {name.lower(): value for name, value in response.getheaders()}
        return response.status, headers, response.read()
    finally:
        conn.close()


@pytest.fixture
def raw_queue_url(sqs, unique):
    return sqs.create_queue(QueueName=unique("raw"))["QueueUrl"]


BAD_REQUESTS = {
    "malformed json": ("AmazonSQS.ListQueues", lambda url: b'{"QueueNamePrefix": '),
    "unknown target": ("AmazonSQS.NoSuchOperation", lambda url: b"{}"),
    "missing QueueUrl": ("AmazonSQS.SendMessage", lambda url: b'{"MessageBody": "x"}'),
    "wrong-typed field": (
        "AmazonSQS.ReceiveMessage",
        lambda url: json.dumps({"QueueUrl": url, "MaxNumberOfMessages": "ten"}).encode(),
    ),
    "non-utf8 body": ("AmazonSQS.ListQueues", lambda url: b'{"QueueNamePrefix": "\xff\xfe"}'),
    "2 MiB body": (
        "AmazonSQS.SendMessage",
        lambda url: json.dumps({"QueueUrl": url, "MessageBody": "x" * (2 << 20)}).encode(),
    ),
}


@pytest.mark.parametrize("case", list(BAD_REQUESTS))
def test_bad_request_gets_json_error(endpoint_url, raw_queue_url, sqs, case):
    target, make_body = BAD_REQUESTS[case]
    status, body = signed_post(endpoint_url, target, make_body(raw_queue_url))
    assert status == 400, f"{case}: HTTP {status} {body[:200]!r}"
    error = json.loads(body)
    assert "__type" in error, f"{case}: no __type in {error}"
    # The server still answers a good request afterwards.
    status, body = signed_post(endpoint_url, "AmazonSQS.ListQueues", b"{}")
    assert status == 200, body
    assert sqs.get_queue_url(QueueName=raw_queue_url.rsplit("/", 1)[1])["QueueUrl"]


# --------------------------------------------------------------------------
# the tagging quota: 5 tagging actions per second per account, as SQS's
# quotas page gives it (docs/ENDPOINT.md, "Quotas"). Each test starts a
# server of its own, so the session's server keeps its quota for the others.


@contextlib.contextmanager
def local_endpoint(*args):
    """`sqs-barrier local --bind 127.0.0.1:0 ARGS...`: yields its URL, stops it
    with SIGTERM."""
    proc = subprocess.Popen(
        [str(_server_binary()), "local", "--bind", "127.0.0.1:0", *args],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        line = _read_first_line(proc, STARTUP_TIMEOUT_S)
        urls = [word for word in line.split() if word.startswith("http://")]
        assert urls, f"no endpoint URL in {line!r}"
        yield urls[0]
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def single_attempt_client(endpoint_url: str):
    """A boto3 client that makes exactly one attempt per call: botocore counts
    retries.max_attempts after the first attempt, total_max_attempts with it,
    and RequestThrottled is a throttling error it would retry."""
    return boto3.client(
        "sqs",
        endpoint_url=endpoint_url,
        region_name="us-east-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",
        config=Config(retries={"total_max_attempts": 1}),
    )


def at_once(calls):
    """Runs the calls at the same moment, one thread each; returns their
    outcomes in order: the result or the ClientError."""
    start = threading.Barrier(len(calls))
    outcomes = [None] * len(calls)

    def run(i, call):
        start.wait()
        try:
            outcomes[i] = call()
        except ClientError as e:
            outcomes[i] = e

    threads = [threading.Thread(target=run, args=(i, c)) for i, c in enumerate(calls)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    return outcomes


def test_tagging_actions_over_the_quota_are_request_throttled():
    with local_endpoint() as url:
        sqs = make_client(url)
        queue = sqs.create_queue(QueueName="tagged", tags={"team": "infra"})["QueueUrl"]
        clients = [single_attempt_client(url) for _ in range(6)]  # one per thread
        began = time.monotonic()
        outcomes = at_once([lambda c=c: c.list_queue_tags(QueueUrl=queue) for c in clients])
        took = time.monotonic() - began
        errors = [o for o in outcomes if isinstance(o, ClientError)]
        assert len(errors) == 1, f"a burst of 6 within {took:.3f} s: {outcomes}"
        (error,) = errors
        assert isinstance(error, sqs.exceptions.RequestThrottled), repr(error)
        assert error.response["Error"]["Code"] == "RequestThrottled"
        assert error.response["Error"]["Message"] == "Rate exceeded"
        assert error.response["ResponseMetadata"]["HTTPStatusCode"] == 400

        # On the wire: with the quota used up, a raw TagQueue is answered as
        # SQS answers throttling (a token that came back meanwhile lets one
        # through first).
        body = json.dumps({"QueueUrl": queue, "Tags": {"x": "1"}}).encode()
        for _ in range(6):
            status, headers, answer = signed_post_with_headers(url, "AmazonSQS.TagQueue", body)
            if status != 200:
                break
        assert status == 400, answer
        assert json.loads(answer) == {
            "__type": "com.amazonaws.sqs#RequestThrottled",
            "message": "Rate exceeded",
        }
        assert headers["x-amzn-query-error"] == "RequestThrottled;Sender"
        assert headers["content-type"] == "application/x-amz-json-1.0"

        time.sleep(1.1)
        tags = sqs.list_queue_tags(QueueUrl=queue)["Tags"]
        assert tags.get("team") == "infra"


def test_tagging_quota_off_with_tagging_tps_0():
    with local_endpoint("--tagging-tps", "0") as url:
        sqs = make_client(url)
        queue = sqs.create_queue(QueueName="free")["QueueUrl"]
        clients = [single_attempt_client(url) for _ in range(20)]
        outcomes = at_once([lambda c=c: c.list_queue_tags(QueueUrl=queue) for c in clients])
        assert not [o for o in outcomes if isinstance(o, ClientError)], outcomes
        for i in range(10):
            sqs.tag_queue(QueueUrl=queue, Tags={f"k{i}": "v"})

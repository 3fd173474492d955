"""The ledger's contract, used by teams that know only proto/ and the README.

Three teams' systems, written with Kafka's Python client (confluent-kafka, its default
partitioner and settings) and the classes generated from proto/loan/v1, run against a
real Apache Kafka and `loanctl up`:

1. the merchant platform publishes LoanApplications to loan.applications, keyed by
   borrower id;
2. the payment system publishes Repayments to payments.repayments, keyed by loan id, and
   reads every RepaymentReceipt on loan.receipts;
3. the collections team reads every CollectionsNotice on loan.overdue and sends
   CollectionsActions to collections.actions;
4. finance and audit read loan.accruals and loan.events.

Every message read is decoded and checked against the live export (GET /v1/export);
at the end the same inputs, written as a scenario file (SPEC section 10), must give
through `loanctl simulate` exactly the export the live ledger shows.

The live ledger decides inputs asynchronously, each service on its own partitions.
Each batch below holds only inputs whose outcome does not depend on the order the
services take them in (or that share a key, and so a partition and its order); the
test waits until a batch is decided before it sends anything that depends on it, and
until everything is decided before it closes a day. So the scenario file, written in
the order the batches were sent, is decided in an equivalent order.
"""

import datetime
import difflib
import json
import time
from decimal import ROUND_HALF_UP, Decimal

import pytest
from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, Producer, TopicPartition
from google.protobuf import unknown_fields

APPLICATIONS = "loan.applications"
REPAYMENTS = "payments.repayments"
ACTIONS = "collections.actions"
EVENTS = "loan.events"
ACCRUALS = "loan.accruals"
OVERDUE = "loan.overdue"
RECEIPTS = "loan.receipts"

OPEN_DATE = "2026-01-01"
CENT = Decimal("0.01")
ZERO = "0.00"

# A platform merchant with every indicator at 100: score 100.00, line 1,000,000.00.
TOP = dict(kind="PLATFORM", annual_sales="5000000.00", sales_growth="0.5", orders_12m="10000",
           seller_rating="5", active_days_90="90")
# SPEC section 10's B2: score 50.40, rejected.
WEAK = dict(kind="OFF_PLATFORM", annual_sales="800000.00", sales_growth="-0.05", inventory_turnover="6.5",
            debt_ratio="0.45", active_days_90="60", positive_review_rate="0.97")


def money(value):
    return str(Decimal(value).quantize(CENT))


def day(text):
    return datetime.date.fromisoformat(text)


def bucket_of(dpd):
    """SPEC's buckets by days past due (the defaults of the product configuration)."""
    if dpd == 0:
        return "CURRENT"
    if dpd <= 30:
        return "M1"
    if dpd <= 60:
        return "M2"
    if dpd <= 90:
        return "M3"
    return "NPL"


def input_key(message):
    """An input's idempotency key (SPEC section 9)."""
    for field in ("application_id", "payment_id", "action_id"):
        if field in message.DESCRIPTOR.fields_by_name:
            return (field, getattr(message, field))
    raise AssertionError(f"not an input: {message}")


def by_id(rows, key):
    return {row[key]: row for row in rows}


# ---------------------------------------------------------------- reading what the ledger sends


def assert_readable(message, where):
    """Everything in `message` is described by proto/: no unknown field, no enum value
    proto/ does not name, no enum left at 0 (missing) where a value is set."""
    unknown = unknown_fields.UnknownFieldSet(message)
    assert len(unknown) == 0, f"{where}: {len(unknown)} field(s) proto/ does not describe: {[f.field_number for f in unknown]}"
    for field, value in message.ListFields():
        values = list(value) if field.is_repeated else [value]
        for item in values:
            if field.type == field.TYPE_MESSAGE:
                assert_readable(item, f"{where}.{field.name}")
            elif field.type == field.TYPE_ENUM:
                assert item in field.enum_type.values_by_number, f"{where}.{field.name}: enum value {item} unknown to proto/"
                assert item != 0, f"{where}.{field.name}: set to 0 (*_UNSPECIFIED)"


class Record:
    """One decoded Kafka record."""

    def __init__(self, message, cls):
        self.topic = message.topic()
        self.partition = message.partition()
        self.offset = message.offset()
        self.key = message.key().decode() if message.key() is not None else None
        self.raw = message.value()
        self.value = cls.FromString(self.raw)
        assert_readable(self.value, f"{self.topic}/{self.partition}/{self.offset}")


class Subscriber:
    """A team's consumer: a consumer group subscribed to one output topic, as a team
    would run it (short session timeout so that the group forms quickly)."""

    def __init__(self, brokers, group, topic, cls):
        self.topic, self.cls = topic, cls
        self.consumer = Consumer({
            "bootstrap.servers": brokers,
            "group.id": group,
            "auto.offset.reset": "earliest",
            "session.timeout.ms": 6000,
            "heartbeat.interval.ms": 1000,
        })
        self.consumer.subscribe([topic])
        # Outputs are delivered at least once, and a copy re-sent after a restart has
        # the event_id of the first: keep the first copy of each id, count the others.
        self.by_id = {}
        self.copies = 0

    def poll_until(self, predicate, what, timeout=60):
        deadline = time.monotonic() + timeout
        while not predicate(self):
            if time.monotonic() > deadline:
                pytest.fail(f"{self.topic}: gave up after {timeout} s waiting until {what}; have {len(self.by_id)} messages")
            self.poll(0.2)

    def poll(self, timeout):
        message = self.consumer.poll(timeout)
        if message is None:
            return
        assert message.error() is None, f"{self.topic}: {message.error()}"
        record = Record(message, self.cls)
        event_id = record.value.event_id
        assert event_id, f"{self.topic}/{record.partition}/{record.offset}: no event_id"
        if event_id in self.by_id:
            assert self.by_id[event_id].raw == record.raw, f"{self.topic}: two different messages with event_id {event_id}"
            self.copies += 1
        else:
            self.by_id[event_id] = record

    def drain(self, quiet=1.0):
        """Reads on until nothing arrives for `quiet` seconds."""
        last = time.monotonic()
        while time.monotonic() - last < quiet:
            before = (len(self.by_id), self.copies)
            self.poll(0.1)
            if (len(self.by_id), self.copies) != before:
                last = time.monotonic()

    def close(self):
        self.consumer.close()


def read_all(brokers, topic, cls):
    """Every record of `topic` from the beginning to its current end, all partitions,
    assigned explicitly (no group)."""
    consumer = Consumer({"bootstrap.servers": brokers, "group.id": f"reader-{topic}-{time.monotonic_ns()}",
                         "enable.auto.commit": False})
    try:
        partitions = sorted(consumer.list_topics(topic, timeout=10).topics[topic].partitions)
        ends = {}
        for p in partitions:
            low, high = consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)
            ends[p] = high
        consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in partitions])
        records, done = [], {p for p in partitions if ends[p] == 0}
        deadline = time.monotonic() + 60
        while len(done) < len(partitions):
            assert time.monotonic() < deadline, f"{topic}: could not read up to the end offsets {ends}"
            message = consumer.poll(0.5)
            if message is None:
                continue
            if message.error():
                assert message.error().code() == KafkaError._PARTITION_EOF, f"{topic}: {message.error()}"
                continue
            if message.offset() < ends[message.partition()]:
                records.append(Record(message, cls))
            if message.offset() + 1 >= ends[message.partition()]:
                done.add(message.partition())
        return records
    finally:
        consumer.close()


def first_copies(records, topic):
    """One record per event_id (a re-sent copy carries the same id and the same bytes)."""
    by_id = {}
    for record in records:
        event_id = record.value.event_id
        assert event_id, f"{topic}/{record.partition}/{record.offset}: no event_id"
        if event_id in by_id:
            assert by_id[event_id].raw == record.raw, f"{topic}: two different messages with event_id {event_id}"
        else:
            by_id[event_id] = record
    return by_id


# ---------------------------------------------------------------- publishing


class Publisher:
    """A team's producer: confluent-kafka with its defaults (the default partitioner,
    consistent_random: CRC32 of the key), one record per message."""

    def __init__(self, brokers, role):
        self.producer = Producer({"bootstrap.servers": brokers, "client.id": role})
        self.errors = []

    def send(self, topic, key, message):
        """Returns a dict that holds the record's partition and offset once delivered."""
        delivery = {"topic": topic, "key": key, "message": message}

        def delivered(error, record):
            if error is not None:
                self.errors.append(error)
            else:
                delivery["partition"], delivery["offset"] = record.partition(), record.offset()

        self.producer.produce(topic, key=key.encode(), value=message.SerializeToString(), on_delivery=delivered)
        return delivery

    def flush(self):
        left = self.producer.flush(30)
        assert left == 0 and not self.errors, f"not delivered: {left} messages, errors {self.errors}"


# ---------------------------------------------------------------- the story


class Story:
    """The three teams against one live ledger, and the scenario file that records what
    they sent, in the order the ledger decided it."""

    def __init__(self, pb, ledger):
        self.pb, self.ledger = pb, ledger
        brokers = ledger.brokers
        self.merchant_platform = Publisher(brokers, "merchant-platform")
        self.payment_system = Publisher(brokers, "payment-system")
        self.collections_team = Publisher(brokers, "collections-team")
        self.receipts = Subscriber(brokers, "payment-system", RECEIPTS, pb.outputs.RepaymentReceipt)
        self.notices = Subscriber(brokers, "collections-team", OVERDUE, pb.outputs.CollectionsNotice)
        self.lines = []  # the scenario file (SPEC section 10)
        self.sent = []  # every input record, with where it landed
        self.closed = []  # the dates closed
        self.notices_checked = set()
        self.dpd_before_cure = {}

    # ---- inputs

    def application(self, application_id, borrower_id, product, amount, term_days, merchant, orders=()):
        inputs, common = self.pb.inputs, self.pb.common
        message = inputs.LoanApplication(
            application_id=application_id, borrower_id=borrower_id, product=common.Product.Value(product),
            amount=amount, term_days=term_days,
            orders=[inputs.Order(order_id=o, amount=a) for o, a in orders],
            merchant=inputs.Merchant(kind=inputs.MerchantKind.Value(merchant["kind"]),
                                     **{k: v for k, v in merchant.items() if k != "kind"}),
        )
        return message

    def apply(self, *applications):
        """The merchant platform sends applications; waits until all are decided."""
        for app in applications:
            self.sent.append(self.merchant_platform.send(APPLICATIONS, app.borrower_id, app))
            self.lines.append(self.application_line(app))
        self.merchant_platform.flush()
        ids = {app.application_id for app in applications}
        return self.ledger.wait_export(lambda e: ids <= set(by_id(e["applications"], "application_id")),
                                       f"applications {sorted(ids)} are decided")

    def repay(self, *payments):
        """The payment system sends (payment_id, loan_id, amount) repayments; waits for
        their receipts and for the export to list them."""
        for payment_id, loan_id, amount in payments:
            message = self.pb.inputs.Repayment(payment_id=payment_id, loan_id=loan_id, amount=amount)
            self.sent.append(self.payment_system.send(REPAYMENTS, loan_id, message))
            self.lines.append({"type": "repayment", "payment_id": payment_id, "loan_id": loan_id, "amount": amount})
        self.payment_system.flush()
        expected = sum(1 for s in self.sent if s["topic"] == REPAYMENTS)
        # The ledger answers every message of payments.repayments with one receipt.
        self.receipts.poll_until(lambda s: len(s.by_id) >= expected, f"{expected} receipts have arrived")
        ids = {p[0] for p in payments}
        return self.ledger.wait_export(lambda e: ids <= set(by_id(e["payments"], "payment_id")),
                                       f"payments {sorted(ids)} are in the export")

    def act(self, *actions):
        """The collections team sends (action_id, kind, borrower_id or None, loan_id or
        None) actions, keyed by the id each names; waits until all are decided."""
        for action_id, kind, borrower_id, loan_id in actions:
            message = self.pb.inputs.CollectionsAction(action_id=action_id, action=self.pb.common.ActionKind.Value(kind))
            line = {"type": "collections_action", "action_id": action_id, "action": kind}
            if borrower_id is not None:
                message.borrower_id = borrower_id
                line["borrower_id"] = borrower_id
            if loan_id is not None:
                message.loan_id = loan_id
                line["loan_id"] = loan_id
            self.sent.append(self.collections_team.send(ACTIONS, borrower_id or loan_id, message))
            self.lines.append(line)
        self.collections_team.flush()
        ids = {a[0] for a in actions}
        return self.ledger.wait_export(lambda e: ids <= set(by_id(e["collections_actions"], "action_id")),
                                       f"collections actions {sorted(ids)} are decided")

    def open(self, date):
        self.ledger.loanctl("open", "--date", date)
        self.lines.append({"type": "open", "date": date})
        return self.ledger.wait_export(lambda e: e["business_date"] == date, f"the ledger is open on {date}")

    def close_days(self, count):
        """Closes `count` business days with `loanctl close-day` (the operator's cron);
        waits until the export shows the next date open."""
        for _ in range(count):
            answer = json.loads(self.ledger.loanctl("close-day"))
            expected = (day(self.closed[-1]) + datetime.timedelta(days=1)).isoformat() if self.closed else OPEN_DATE
            assert answer["closed"] == expected, answer
            self.closed.append(answer["closed"])
            self.lines.append({"type": "close_day", "date": answer["closed"]})
        open_date = answer["business_date"]
        return self.ledger.wait_export(lambda e: e["business_date"] == open_date, f"the export shows {open_date} open")

    def application_line(self, app):
        common, inputs = self.pb.common, self.pb.inputs
        line = {"type": "application", "application_id": app.application_id, "borrower_id": app.borrower_id,
                "product": common.Product.Name(app.product), "amount": app.amount, "term_days": app.term_days}
        if app.orders:
            line["orders"] = [{"order_id": o.order_id, "amount": o.amount} for o in app.orders]
        merchant = {"kind": inputs.MerchantKind.Name(app.merchant.kind)}
        for field in ("annual_sales", "sales_growth", "orders_12m", "seller_rating", "active_days_90",
                      "inventory_turnover", "debt_ratio", "positive_review_rate"):
            if app.merchant.HasField(field):
                merchant[field] = getattr(app.merchant, field)
        line["merchant"] = merchant
        return line

    # ---- checks of what the teams read

    def check_receipts(self, export):
        """Every receipt read so far against the export's payments list."""
        outputs, common = self.pb.outputs, self.pb.common
        payments = by_id(export["payments"], "payment_id")
        loans = by_id(export["loans"], "loan_id")
        sent = [s["message"] for s in self.sent if s["topic"] == REPAYMENTS]
        assert len(self.receipts.by_id) == len(sent), "one receipt per repayment message"
        answered = {}
        for record in self.receipts.by_id.values():
            receipt = record.value
            where = f"receipt {receipt.event_id} ({receipt.payment_id})"
            status = outputs.ReceiptStatus.Name(receipt.status)
            assert record.key == receipt.loan_id, f"{where}: keyed {record.key!r}, not by its loan id"
            answered.setdefault(receipt.payment_id, []).append(status)
            assert receipt.payment_id in payments, f"{where}: the export lists no such payment"
            row = payments[receipt.payment_id]
            assert receipt.loan_id == row["loan_id"], where
            amounts = [receipt.penalty, receipt.interest, receipt.principal, receipt.overpayment]
            if status == "DUPLICATE":
                # The first receipt of this payment id says how it was applied.
                assert amounts == [ZERO] * 4 and receipt.amount == ZERO, where
                assert not receipt.HasField("reason"), where
                continue
            assert status == row["status"], f"{where}: {status}, the export says {row['status']}"
            assert amounts == [row["penalty"], row["interest"], row["principal"], row["overpayment"]], \
                f"{where}: {amounts} against {row}"
            if receipt.HasField("reason"):
                assert common.Reason.Name(receipt.reason) == row["reason"], where
            else:
                assert row["reason"] is None, where
            sent_amount = next(m.amount for m in sent if m.payment_id == receipt.payment_id)
            if status == "APPLIED":
                assert sum(Decimal(a) for a in amounts) == Decimal(receipt.amount) == Decimal(sent_amount), where
                assert receipt.loan_id in loans, where
            elif status == "RECOVERY":
                assert receipt.amount == sent_amount, where
                assert loans[receipt.loan_id]["status"] == "WRITTEN_OFF", where
            else:
                assert status == "REJECTED" and receipt.HasField("reason"), where
                assert receipt.amount == ZERO, where
        # Each payment id has one answer saying what became of it, and one DUPLICATE per
        # re-send.
        for payment_id in {m.payment_id for m in sent}:
            copies = sum(1 for m in sent if m.payment_id == payment_id)
            statuses = answered.get(payment_id, [])
            assert sorted(statuses) == sorted([payments[payment_id]["status"]] + ["DUPLICATE"] * (copies - 1)), \
                f"{payment_id}: receipts {statuses}"
        return answered

    def expect_notices(self, count, export):
        """Waits for `count` new notices on loan.overdue and checks each against the
        export taken after the input that caused it (nothing has changed since)."""
        target = len(self.notices_checked) + count
        self.notices.poll_until(lambda s: len(s.by_id) >= target, f"{target} notices have arrived")
        self.notices.drain(0.5)
        assert len(self.notices.by_id) == target, f"more notices than expected: {self.describe_notices()}"
        new = [r for i, r in self.notices.by_id.items() if i not in self.notices_checked]
        for record in new:
            self.check_notice(record, export)
            self.notices_checked.add(record.value.event_id)
        return [self.notice_summary(r.value) for r in new]

    def check_notice(self, record, export):
        outputs, common = self.pb.outputs, self.pb.common
        loans = by_id(export["loans"], "loan_id")
        notice = record.value
        which = notice.WhichOneof("notice")
        assert which is not None, f"notice {notice.event_id}: neither overdue nor blacklisted"
        if which == "blacklisted":
            body = notice.blacklisted
            loan = loans[body.loan_id]
            assert record.key == body.borrower_id == loan["borrower_id"]
            assert body.dpd == loan["dpd"] >= 91
            return
        body = notice.overdue
        where = f"notice {notice.event_id} ({outputs.NoticeKind.Name(body.kind)} {body.loan_id})"
        loan = loans[body.loan_id]
        assert record.key == body.borrower_id == loan["borrower_id"], where
        kind = outputs.NoticeKind.Name(body.kind)
        bucket, previous = common.Bucket.Name(body.bucket), common.Bucket.Name(body.previous_bucket)
        owed = [body.principal_owed, body.interest_owed, body.penalty_owed]
        if kind == "LOAN_CURED":
            assert loan["status"] == "SETTLED" and loan["dpd"] == 0 and loan["bucket"] == "CURRENT", where
            assert body.dpd == self.dpd_before_cure[body.loan_id] > 0, where
            assert bucket == "CURRENT" and previous == bucket_of(body.dpd), where
            assert owed == [ZERO] * 3, where
            # Dated the business date of the payment that cured it.
            assert body.date == export["business_date"], where
            return
        assert body.dpd == (day(body.date) - day(loan["maturity_date"])).days + 1, where
        assert body.dpd == loan["dpd"] and bucket == loan["bucket"] == bucket_of(body.dpd), f"{where}: against {loan}"
        assert owed == [loan["principal_outstanding"], loan["interest_owed"], loan["penalty_owed"]], \
            f"{where}: owed {owed} against {loan}"
        if kind == "LOAN_OVERDUE":
            assert body.dpd == 1 and bucket == "M1" and previous == "CURRENT", where
        else:
            assert kind == "BUCKET_CHANGED", where
            assert previous == bucket_of(body.dpd - 1) != bucket, where
        assert body.date == self.closed[-1], f"{where}: caused by the close of {body.date}, not the last ({self.closed[-1]})"

    def notice_summary(self, notice):
        if notice.WhichOneof("notice") == "blacklisted":
            return ("BORROWER_BLACKLISTED", notice.blacklisted.loan_id)
        return (self.pb.outputs.NoticeKind.Name(notice.overdue.kind), notice.overdue.loan_id)

    def describe_notices(self):
        return sorted(self.notice_summary(r.value) for r in self.notices.by_id.values())


@pytest.fixture(scope="module")
def story(pb, ledger):
    story = Story(pb, ledger)
    yield story
    story.receipts.close()
    story.notices.close()
    for publisher in (story.merchant_platform, story.payment_system, story.collections_team):
        publisher.producer.close()


# ---------------------------------------------------------------- the steps


@pytest.mark.incremental
class TestForeignClients:
    def test_1_merchant_platform_publishes_applications(self, story):
        story.open(OPEN_DATE)
        story.apply(
            story.application("A1", "B1", "CREDIT", "20000.00", 90, TOP),
            # Same borrower, so same key and partition: decided after A1, on top of it.
            story.application("A5", "B1", "CREDIT", "600000.00", 30, TOP),
            story.application("A2", "B2", "ORDER", "900.00", 30, WEAK, orders=[("O1", "500.00"), ("O2", "400.00")]),
            story.application("A3", "B3", "ORDER", "800.00", 3, TOP, orders=[("O3", "500.00"), ("O4", "300.00")]),
            story.application("A4", "B4", "CREDIT", "3000.00", 2, TOP),
            story.application("A8", "B6", "CREDIT", "5000.00", 1, TOP),
            story.application("A9", "B7", "CREDIT", "1000.00", 30, TOP),
        )
        # O3 is financed by A3 now: a second loan on it is refused, whoever asks.
        export = story.apply(story.application("A6", "B5", "ORDER", "500.00", 10, TOP, orders=[("O3", "500.00")]))

        applications = by_id(export["applications"], "application_id")
        decisions = {i: (a["decision"], a["reasons"]) for i, a in applications.items()}
        assert decisions == {
            "A1": ("APPROVED", []),
            "A2": ("REJECTED", ["SCORE_TOO_LOW"]),
            "A3": ("APPROVED", []),
            "A4": ("APPROVED", []),
            "A5": ("REJECTED", ["OVER_PRODUCT_MAX"]),
            "A6": ("REJECTED", ["ORDER_ALREADY_FINANCED"]),
            "A8": ("APPROVED", []),
            "A9": ("APPROVED", []),
        }
        assert applications["A2"]["score"] == "50.40" and applications["A1"]["score"] == "100.00"
        loans = by_id(export["loans"], "loan_id")
        assert sorted(loans) == ["A1", "A3", "A4", "A8", "A9"]
        assert loans["A3"]["product"] == "ORDER" and loans["A3"]["maturity_date"] == "2026-01-04"
        assert loans["A1"]["principal"] == "20000.00" and loans["A1"]["maturity_date"] == "2026-04-01"
        # The applications landed on the partitions confluent-kafka's default
        # partitioner chose; one borrower's two applications on one partition.
        partitions = {s["message"].application_id: s["partition"] for s in story.sent if s["topic"] == APPLICATIONS}
        assert partitions["A1"] == partitions["A5"]

    def test_2_payment_system_repays_and_reads_every_receipt(self, story):
        # A8 matures on 01-02: overdue (DPD 1) after that day's close.
        export = story.close_days(2)
        assert story.expect_notices(1, export) == [("LOAN_OVERDUE", "A8")]

        a1 = by_id(export["loans"], "loan_id")["A1"]
        assert a1["interest_accrued"] == "24.00"  # 2 days x 20,000 x 0.0006
        a9 = by_id(export["loans"], "loan_id")["A9"]
        settle_a9 = Decimal(a9["principal_outstanding"]) + Decimal(a9["interest_owed"]) + Decimal("8.80")
        export = story.repay(
            ("P1", "A1", "1000.00"),  # partial: 24.00 interest, 976.00 principal
            ("P2", "A9", money(settle_a9)),  # settles A9 on time, 8.80 overpaid
            ("P3", "NOPE", "50.00"),  # no such loan: REJECTED, UNKNOWN_LOAN
            ("P1", "A1", "1000.00"),  # re-sent: changes nothing, answered DUPLICATE
            ("P4", "A1", "12.345"),  # not a money string: REJECTED, INVALID_AMOUNT
        )
        answered = story.check_receipts(export)
        assert answered == {"P1": ["APPLIED", "DUPLICATE"], "P2": ["APPLIED"], "P3": ["REJECTED"], "P4": ["REJECTED"]}
        payments = by_id(export["payments"], "payment_id")
        assert len(export["payments"]) == 4, "a re-sent payment is listed once"
        assert (payments["P1"]["interest"], payments["P1"]["principal"]) == ("24.00", "976.00")
        assert (payments["P3"]["reason"], payments["P4"]["reason"]) == ("UNKNOWN_LOAN", "INVALID_AMOUNT")
        assert payments["P2"]["overpayment"] == "8.80"
        loans = by_id(export["loans"], "loan_id")
        assert loans["A9"]["status"] == "SETTLED" and loans["A1"]["principal_outstanding"] == "19024.00"

    def test_3_collections_team_reads_notices_and_acts(self, story):
        # A4 matures on 01-03, A3 on 01-04: each is overdue after its maturity day's close.
        export = story.close_days(1)
        assert story.expect_notices(1, export) == [("LOAN_OVERDUE", "A4")]
        export = story.close_days(1)
        assert story.expect_notices(1, export) == [("LOAN_OVERDUE", "A3")]

        # The payment system pays off overdue A4 (5.00 too much): LOAN_CURED.
        a4 = by_id(export["loans"], "loan_id")["A4"]
        story.dpd_before_cure["A4"] = a4["dpd"]
        owed = sum(Decimal(a4[k]) for k in ("principal_outstanding", "interest_owed", "penalty_owed"))
        export = story.repay(("P5", "A4", money(owed + 5)))
        assert story.expect_notices(1, export) == [("LOAN_CURED", "A4")]
        assert by_id(export["payments"], "payment_id")["P5"]["overpayment"] == "5.00"

        # The collections team acts on what it read.
        export = story.act(
            ("C1", "MARK_MALICIOUS", "B3", None),  # B3's A3 is overdue
            ("C4", "REINSTATE", "B3", None),  # same key: after C1, and refused (MALICIOUS)
            ("C2", "WRITE_OFF", None, "A3"),
            ("C3", "WRITE_OFF", None, "A1"),  # not overdue: NOT_OVERDUE
            ("C5", "REINSTATE", "B2", None),  # never blacklisted: NOT_BLACKLISTED
            ("C6", "WRITE_OFF", None, "NOPE"),  # UNKNOWN_LOAN
        )
        actions = {a["action_id"]: (a["status"], a["reason"]) for a in export["collections_actions"]}
        assert actions == {
            "C1": ("APPLIED", None),
            "C2": ("APPLIED", None),
            "C3": ("REJECTED", "NOT_OVERDUE"),
            "C4": ("REJECTED", "MALICIOUS"),
            "C5": ("REJECTED", "NOT_BLACKLISTED"),
            "C6": ("REJECTED", "UNKNOWN_LOAN"),
        }
        borrowers = by_id(export["borrowers"], "borrower_id")
        assert borrowers["B3"]["malicious"] is True and borrowers["B3"]["blacklisted"] is True
        assert borrowers["B2"]["blacklisted"] is False
        loans = by_id(export["loans"], "loan_id")
        assert loans["A3"]["status"] == "WRITTEN_OFF" and loans["A1"]["status"] == "ACTIVE"
        assert export["portfolio"]["written_off_principal"] == loans["A3"]["principal_outstanding"] == "800.00"
        assert borrowers["B3"]["outstanding_principal"] == ZERO

        # After the write-off: a payment on A3 is a recovery, and B3, blacklisted as
        # malicious, gets no new loan.
        export = story.repay(("P6", "A3", "100.00"))
        export = story.apply(story.application("A10", "B3", "CREDIT", "1000.00", 30, TOP))
        assert by_id(export["payments"], "payment_id")["P6"]["status"] == "RECOVERY"
        assert by_id(export["loans"], "loan_id")["A3"]["recovered"] == "100.00"
        a10 = by_id(export["applications"], "application_id")["A10"]
        assert a10["decision"] == "REJECTED" and "BLACKLISTED" in a10["reasons"]
        story.check_receipts(export)

        # Closes up to 02-01, when overdue A8 reaches DPD 31: BUCKET_CHANGED M1 -> M2.
        export = story.close_days((day("2026-02-01") - day(story.closed[-1])).days)
        assert story.expect_notices(1, export) == [("BUCKET_CHANGED", "A8")]
        a8 = by_id(export["loans"], "loan_id")["A8"]
        assert (a8["dpd"], a8["bucket"]) == (31, "M2")

        story.receipts.drain(0.5)
        story.check_receipts(story.ledger.export())
        assert story.describe_notices() == sorted([
            ("LOAN_OVERDUE", "A8"), ("LOAN_OVERDUE", "A4"), ("LOAN_OVERDUE", "A3"),
            ("LOAN_CURED", "A4"), ("BUCKET_CHANGED", "A8"),
        ])

    def test_4_every_output_topic_decodes_and_adds_up(self, story, pb):
        ledger = story.ledger
        export = ledger.export()
        loans = by_id(export["loans"], "loan_id")

        # The teams' consumer groups saw every message of their topics.
        for subscriber in (story.receipts, story.notices):
            everything = first_copies(read_all(ledger.brokers, subscriber.topic, subscriber.cls), subscriber.topic)
            assert set(everything) == set(subscriber.by_id), f"{subscriber.topic}: the group missed messages"

        # loan.accruals: one posting per ACTIVE loan per close; postings add up to the
        # loan's rounded totals (outputs.proto), also for loans since settled or
        # written off (they stopped accruing, the totals stay).
        postings = first_copies(read_all(ledger.brokers, ACCRUALS, pb.outputs.AccrualPosting), ACCRUALS)
        per_loan = {}
        for record in postings.values():
            posting = record.value
            assert posting.loan_id in loans, posting
            assert record.key == posting.borrower_id == loans[posting.loan_id]["borrower_id"], posting
            per_loan.setdefault(posting.loan_id, []).append(posting)
        assert set(per_loan) == set(loans), "every loan was ACTIVE at one close at least"
        for loan_id, items in per_loan.items():
            loan = loans[loan_id]
            items.sort(key=lambda p: p.date)
            dates = [p.date for p in items]
            assert len(set(dates)) == len(dates), f"{loan_id}: two postings for one date"
            interest = penalty = Decimal(0)
            for p in items:
                interest += Decimal(p.interest)
                penalty += Decimal(p.penalty)
                assert (p.interest_accrued, p.penalty_accrued) == (money(interest), money(penalty)), p
            assert (money(interest), money(penalty)) == (loan["interest_accrued"], loan["penalty_accrued"]), loan_id
            assert dates[0] == loan["disbursed_on"]
            if loan["status"] == "ACTIVE":
                assert dates == story.closed[story.closed.index(loan["disbursed_on"]):], f"{loan_id}: a close without a posting"
        income = sum(Decimal(p.value.interest) for p in postings.values())
        assert money(income) == export["portfolio"]["interest_income"]
        assert money(sum(Decimal(p.value.penalty) for p in postings.values())) == export["portfolio"]["penalty_income"]

        # loan.events: every record is a fact proto/ describes; each input record the
        # teams sent became exactly one fact that names where it was read.
        facts = first_copies(read_all(ledger.brokers, EVENTS, pb.events.LoanEvent), EVENTS)
        kinds = {}
        by_source = {}
        for record in facts.values():
            event = record.value
            kind = event.WhichOneof("fact")
            assert kind is not None, f"{EVENTS}/{record.partition}/{record.offset}: no fact set"
            kinds.setdefault(kind, []).append(record)
            if event.source:
                assert event.source not in by_source, f"two facts from {event.source}"
                by_source[event.source] = record
        # A re-sent input (an id seen before) changes nothing. A re-sent payment is
        # answered (a DUPLICATE receipt), so it is recorded as a payment_seen fact, from
        # which the receipt is derived after the first payment's; any other re-sent
        # input appends no fact.
        seen, firsts = set(), []
        for sent in story.sent:
            source = f"{sent['topic']}/{sent['partition']}/{sent['offset']}"
            input_id = input_key(sent["message"])
            if input_id in seen and sent["topic"] == REPAYMENTS:
                assert source in by_source, f"no payment_seen fact from the re-sent {source}"
                assert by_source[source].value.WhichOneof("fact") == "payment_seen", by_source[source].value
                firsts.append(source)
            elif input_id in seen:
                assert source not in by_source, f"a fact from the re-sent {source} ({sent['message']})"
            else:
                assert source in by_source, f"no fact from {source} ({sent['message']})"
                firsts.append(source)
            seen.add(input_id)
        assert sorted(by_source) == sorted(firsts), "facts with a source the teams did not send"

        partitions = {r.partition for r in facts.values()}
        assert len(partitions) == 3
        assert sorted((r.partition, r.value.opened.date) for r in kinds["opened"]) == [(p, OPEN_DATE) for p in sorted(partitions)]
        closes = sorted((r.value.day_closed.date, r.partition) for r in kinds["day_closed"])
        assert closes == sorted((d, p) for d in story.closed for p in partitions)

        applications = by_id(export["applications"], "application_id")
        decided = {r.value.application_decided.application_id: r for r in kinds["application_decided"]}
        assert set(decided) == set(applications)
        for application_id, record in decided.items():
            fact, row = record.value.application_decided, applications[application_id]
            assert record.key == fact.borrower_id == row["borrower_id"]
            assert [pb.common.Reason.Name(r) for r in fact.reasons] == row["reasons"]
            assert fact.HasField("disbursement") == (row["decision"] == "APPROVED")
            # The fact holds the exact score; the export shows it rounded half up.
            assert str(Decimal(fact.score).quantize(CENT, ROUND_HALF_UP)) == row["score"]
            if fact.HasField("disbursement"):
                loan = loans[fact.disbursement.loan_id]
                assert (fact.disbursement.principal, fact.disbursement.disbursed_on, fact.disbursement.maturity_date) == \
                    (loan["principal"], loan["disbursed_on"], loan["maturity_date"])

        payments = by_id(export["payments"], "payment_id")
        for record in kinds.get("repayment_accepted", []) + kinds.get("repayment_refused", []):
            kind = record.value.WhichOneof("fact")
            fact = getattr(record.value, kind)
            assert fact.payment_id in payments
            if kind == "repayment_refused":
                assert pb.common.Reason.Name(fact.reason) == payments[fact.payment_id]["reason"]
                expected_key = fact.borrower_id if fact.HasField("borrower_id") else fact.loan_id
            else:
                expected_key = fact.borrower_id
            assert record.key == expected_key, f"{kind} {fact.payment_id} keyed {record.key!r}"

        actions = by_id(export["collections_actions"], "action_id")
        for record in kinds.get("action_applied", []):
            assert actions[record.value.action_applied.action_id]["status"] == "APPLIED"
        for record in kinds.get("action_refused", []):
            fact = record.value.action_refused
            assert (actions[fact.action_id]["status"], actions[fact.action_id]["reason"]) == \
                ("REJECTED", pb.common.Reason.Name(fact.reason))
        assert len(kinds.get("action_applied", [])) + len(kinds.get("action_refused", [])) == len(actions)
        print(f"loan.events: {len(facts)} facts, {({k: len(v) for k, v in sorted(kinds.items())})}; "
              f"loan.accruals: {len(postings)}; loan.receipts: {len(story.receipts.by_id)}; "
              f"loan.overdue: {len(story.notices.by_id)}")

    def test_5_the_same_inputs_simulated_give_the_live_export(self, story, tmp_path):
        scenario = tmp_path / "python-client.jsonl"
        scenario.write_text("".join(json.dumps(line) + "\n" for line in story.lines))
        simulated = json.loads(story.ledger.loanctl("simulate", str(scenario), brokers=False))
        live = story.ledger.export()
        if simulated != live:
            diff = difflib.unified_diff(json.dumps(simulated, indent=1, sort_keys=True).splitlines(),
                                        json.dumps(live, indent=1, sort_keys=True).splitlines(),
                                        "loanctl simulate", "GET /v1/export", lineterm="")
            pytest.fail("the live export differs from the simulated one:\n" + "\n".join(diff))
        digest = story.ledger.loanctl("simulate", "--digest", str(scenario), brokers=False).strip()
        assert digest == story.ledger.loanctl("digest", "--api", story.ledger.api, brokers=False).strip()

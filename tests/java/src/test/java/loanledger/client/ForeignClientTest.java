package loanledger.client;

import static java.nio.charset.StandardCharsets.UTF_8;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import com.google.protobuf.Descriptors.EnumValueDescriptor;
import com.google.protobuf.Descriptors.FieldDescriptor;
import com.google.protobuf.Message;
import java.io.IOException;
import java.math.BigDecimal;
import java.net.ServerSocket;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.time.LocalDate;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.Set;
import java.util.TreeMap;
import java.util.TreeSet;
import java.util.concurrent.TimeUnit;
import java.util.function.Predicate;
import java.util.stream.Collectors;
import java.util.stream.Stream;
import loan.v1.Common.ActionKind;
import loan.v1.Common.Product;
import loan.v1.Inputs.CollectionsAction;
import loan.v1.Inputs.LoanApplication;
import loan.v1.Inputs.Merchant;
import loan.v1.Inputs.MerchantKind;
import loan.v1.Inputs;
import loan.v1.Inputs.Repayment;
import loan.v1.Outputs.BorrowerBlacklisted;
import loan.v1.Outputs.CollectionsNotice;
import loan.v1.Outputs.NoticeKind;
import loan.v1.Outputs.OverdueNotice;
import loan.v1.Outputs.ReceiptStatus;
import loan.v1.Outputs.RepaymentReceipt;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.clients.producer.RecordMetadata;
import org.apache.kafka.common.serialization.ByteArraySerializer;
import org.apache.kafka.common.serialization.StringSerializer;
import org.apache.kafka.common.utils.Utils;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.MethodOrderer;
import org.junit.jupiter.api.Order;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;
import org.junit.jupiter.api.TestMethodOrder;

/**
 * The ledger's contract seen by a Java team that has only proto/ and the README: the merchant
 * platform, the payment system and the collections team, each with Kafka's own Java client and its
 * defaults, against an Apache Kafka broker and {@code loanctl up} of this test's own.
 *
 * <p>The steps run in order and share one ledger; a step after a failed one is skipped. Every
 * input is also written to a scenario file (SPEC section 10), and the last step checks that
 * {@code loanctl simulate} of that file prints the live export.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
@TestMethodOrder(MethodOrderer.OrderAnnotation.class)
class ForeignClientTest {
  static final String APPLICATIONS = "loan.applications";
  static final String REPAYMENTS = "payments.repayments";
  static final String ACTIONS = "collections.actions";
  static final String OVERDUE = "loan.overdue";
  static final String RECEIPTS = "loan.receipts";
  static final int PARTITIONS = 3;
  static final LocalDate FIRST_DAY = LocalDate.parse("2026-01-01");
  /** How long the live ledger may take to process one step. */
  static final Duration WAIT = Duration.ofSeconds(60);

  static final ObjectMapper JSON = new ObjectMapper();
  final long started = System.nanoTime();
  final HttpClient http = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(2)).build();

  Path repo;
  String loanctl;
  Path work;
  int kafkaPort;
  Path kafkaDir;
  String brokers;
  String api;
  Process ledger;
  Path ledgerLog;
  boolean failed;

  KafkaProducer<String, byte[]> producer;
  Subscriber<RepaymentReceipt> receipts;
  Subscriber<CollectionsNotice> notices;

  /** Every input sent, in the order sent: the scenario file of the last step. */
  final List<ObjectNode> scenario = new ArrayList<>();
  /** Each payment id -> the amounts sent with it, one per message (a re-send adds one). */
  final Map<String, List<String>> paymentsSent = new TreeMap<>();
  /** The notices loan.overdue must carry, as "KIND id date", worked out from the export. */
  final Set<String> expectedNotices = new TreeSet<>();

  // ---------------------------------------------------------------------------------------
  // The ledger of this test: Apache Kafka (scripts/kafka) and `loanctl up`.

  @BeforeAll
  void startBrokerAndLedger() throws Exception {
    loanctl = System.getenv("LOANCTL");
    if (loanctl == null || loanctl.isEmpty() || !Files.isExecutable(Path.of(loanctl))) {
      fail("LOANCTL must name the built loanctl binary (got " + loanctl + ")");
    }
    repo = Path.of(System.getProperty("loanledger.repo", "../..")).toRealPath();
    work = Files.createTempDirectory("loanledger-java-");
    kafkaPort = freePort();
    kafkaDir = work.resolve("kafka");
    brokers = "127.0.0.1:" + kafkaPort;
    log("work folder " + work);
    try {
      // start fetches the broker's jars first when they are not cached (minutes, once).
      run(Duration.ofSeconds(900), "bash", repo.resolve("scripts/kafka").toString(), "start",
          "--port", String.valueOf(kafkaPort), "--dir", kafkaDir.toString());
      log("Apache Kafka up on " + brokers);
      // `up` alone on a brand-new broker, as a user starts it: it creates the topics and
      // waits until their partitions are led before it reads them.
      int httpPort = freePort();
      api = "http://127.0.0.1:" + httpPort;
      ledgerLog = work.resolve("ledger.log");
      ProcessBuilder up = new ProcessBuilder(loanctl, "up", "--brokers", brokers, "--data",
              work.resolve("data").toString(), "--http", "127.0.0.1:" + httpPort,
              "--partitions", String.valueOf(PARTITIONS))
          .redirectErrorStream(true)
          .redirectOutput(ledgerLog.toFile());
      up.environment().put("NO_COLOR", "1");
      ledger = up.start();
      awaitApi();
      log("loanctl up answers on " + api);
      loanctl("open", "--brokers", brokers, "--date", FIRST_DAY.toString());
      scenario.add(line("open").put("date", FIRST_DAY.toString()));
      awaitExport("the ledger open on " + FIRST_DAY,
          e -> FIRST_DAY.toString().equals(e.path("business_date").asText(null)));

      producer = new KafkaProducer<>(producerProperties());
      receipts = new Subscriber<>(brokers, RECEIPTS, "payment-system-java", RepaymentReceipt.parser(),
          RepaymentReceipt::getEventId);
      notices = new Subscriber<>(brokers, OVERDUE, "collections-java", CollectionsNotice.parser(),
          CollectionsNotice::getEventId);
    } catch (Throwable t) {
      failed = true;
      dumpLogs();
      throw t;
    }
  }

  @AfterAll
  void stopEverything() throws Exception {
    for (AutoCloseable c : new AutoCloseable[] {receipts, notices, producer}) {
      if (c != null) {
        try {
          c.close();
        } catch (Exception e) {
          log("closing: " + e);
        }
      }
    }
    if (ledger != null) {
      ledger.destroy();
      if (!ledger.waitFor(20, TimeUnit.SECONDS)) {
        ledger.destroyForcibly().waitFor(10, TimeUnit.SECONDS);
      }
    }
    if (kafkaDir != null && Files.exists(kafkaDir.resolve("server.properties"))) {
      try {
        run(Duration.ofSeconds(60), "bash", repo.resolve("scripts/kafka").toString(), "stop",
            "--port", String.valueOf(kafkaPort), "--dir", kafkaDir.toString());
      } catch (Throwable t) {
        log("stopping the broker: " + t);
      }
    }
    if (failed) {
      log("kept the work folder for inspection: " + work);
    } else if (work != null) {
      deleteTree(work);
    }
    log("done");
  }

  /** Kafka's Java producer with its defaults: only where to connect and the serializers. */
  Properties producerProperties() {
    Properties p = new Properties();
    p.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, brokers);
    p.put(ProducerConfig.CLIENT_ID_CONFIG, "java-client-test");
    // Keys are the partitioning ids as UTF-8 bytes (common.proto): StringSerializer's default.
    p.put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName());
    p.put(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, ByteArraySerializer.class.getName());
    return p;
  }

  // ---------------------------------------------------------------------------------------
  // The steps.

  @Test
  @Order(0)
  void theProducerRunsWithKafkasDefaults() {
    step(() -> {
      // Nothing but the bootstrap servers and serializers was set: the configuration in force
      // is Kafka's default. acks=all and idempotence (Kafka 3.0+), no partitioner class: keyed
      // records go to murmur2(key) % partitions (BuiltInPartitioner), checked on every send.
      ProducerConfig inForce = new ProducerConfig(Utils.propsToMap(producerProperties()));
      assertTrue(Set.of("all", "-1").contains(inForce.getString(ProducerConfig.ACKS_CONFIG)),
          "acks in force: " + inForce.getString(ProducerConfig.ACKS_CONFIG));
      assertTrue(inForce.getBoolean(ProducerConfig.ENABLE_IDEMPOTENCE_CONFIG), "enable.idempotence");
      assertNull(inForce.getClass(ProducerConfig.PARTITIONER_CLASS_CONFIG), "partitioner.class");
      assertFalse(inForce.getBoolean(ProducerConfig.PARTITIONER_IGNORE_KEYS_CONFIG),
          "partitioner.ignore.keys");
      assertEquals(PARTITIONS, producer.partitionsFor(APPLICATIONS).size(), "partitions");
    });
  }

  @Test
  @Order(1)
  void merchantPlatformPublishesApplications() {
    step(() -> {
      List<LoanApplication> apps = List.of(
          // Approved: a top platform merchant (score 100), 3 days: matures 01-04.
          credit("A1", "B1", "2000.00", 3, topPlatform()),
          // Approved ORDER loan on two orders, repaid on its first day below.
          LoanApplication.newBuilder().setApplicationId("A2").setBorrowerId("B2")
              .setProduct(Product.ORDER).setAmount("800.00").setTermDays(30)
              .addOrders(order("O1", "500.00")).addOrders(order("O2", "300.00"))
              .setMerchant(topPlatform()).build(),
          // Rejected: a weak off-platform merchant (score about 12).
          credit("A3", "B3", "900.00", 30, offPlatform("100000.00", "-0.40", "1", "0.90", "10", "0.50")),
          // Approved: a good off-platform merchant (score 79.36), 2 days: matures 01-03.
          credit("A4", "B4", "1000.00", 2, offPlatform("4000000.00", "0.20", "10", "0.30", "80", "0.98")),
          // Rejected ORDER: 1000.00 asked on orders worth 600.00.
          LoanApplication.newBuilder().setApplicationId("A5").setBorrowerId("B5")
              .setProduct(Product.ORDER).setAmount("1000.00").setTermDays(20)
              .addOrders(order("O3", "400.00")).addOrders(order("O4", "200.00"))
              .setMerchant(topPlatform()).build(),
          // Approved: 1 day, matures 01-02; never repaid: M1 after the close of 01-02, M2
          // after that of 02-01.
          credit("A7", "B7", "3000.00", 1, topPlatform()));
      for (LoanApplication a : apps) {
        send(APPLICATIONS, a.getBorrowerId(), a, scenarioLine(a));
      }
      JsonNode export = awaitExport("6 applications decided", e -> has(e, "applications", "application_id",
          "A1", "A2", "A3", "A4", "A5", "A7"));
      assertApplication(export, "A1", "APPROVED");
      assertApplication(export, "A2", "APPROVED");
      assertApplication(export, "A3", "REJECTED", "SCORE_TOO_LOW");
      assertApplication(export, "A4", "APPROVED");
      assertApplication(export, "A5", "REJECTED", "ORDER_AMOUNT_EXCEEDED");
      assertApplication(export, "A7", "APPROVED");
      assertEquals("100.00", row(export, "applications", "application_id", "A1").get("score").asText());
      assertEquals("79.36", row(export, "applications", "application_id", "A4").get("score").asText());
      for (String id : List.of("A1", "A2", "A4", "A7")) {
        JsonNode loan = row(export, "loans", "loan_id", id);
        assertEquals("ACTIVE", loan.get("status").asText(), id);
        assertEquals("2026-01-01", loan.get("disbursed_on").asText(), id);
      }
      assertEquals("2026-01-04", row(export, "loans", "loan_id", "A1").get("maturity_date").asText());
      assertNull(find(export, "loans", "loan_id", "A3"), "a rejected application has no loan");
    });
  }

  @Test
  @Order(2)
  void paymentSystemPublishesRepaymentsAndReadsReceipts() {
    step(() -> {
      Repayment p1 = repayment("P1", "A2", "100.00"); // partial
      pay(p1);
      pay(repayment("P2", "A2", "750.00")); // settles A2 (700.00 left) with 50.00 over
      pay(repayment("P3", "NO-SUCH-LOAN", "50.00")); // refused: UNKNOWN_LOAN
      pay(p1); // re-sent with the same payment id: DUPLICATE, changes nothing
      JsonNode export = awaitExport("P1, P2, P3 decided",
          e -> has(e, "payments", "payment_id", "P1", "P2", "P3"));
      // The duplicate is not in the export: its receipt says it was handled.
      awaitReceipts();
      assertPayment(export, "P1", "APPLIED", "0.00", "0.00", "100.00", "0.00", null);
      assertPayment(export, "P2", "APPLIED", "0.00", "0.00", "700.00", "50.00", null);
      assertPayment(export, "P3", "REJECTED", "0.00", "0.00", "0.00", "0.00", "UNKNOWN_LOAN");
      JsonNode a2 = row(export, "loans", "loan_id", "A2");
      assertEquals("SETTLED", a2.get("status").asText());
      assertEquals("50.00", a2.get("overpayment").asText());
      checkReceipts(export);
    });
  }

  @Test
  @Order(3)
  void daysCloseUntilLoansAreOverdueAndCollectionsReadsTheNotices() {
    step(() -> {
      // 01-01 and 01-02 charge interest; the close of 01-03 makes A4 (matures 01-03) overdue,
      // that of 01-04 A1.
      closeDay(LocalDate.parse("2026-01-01"));
      closeDay(LocalDate.parse("2026-01-02"));
      JsonNode e3 = closeDay(LocalDate.parse("2026-01-03"));
      assertTrue(expectedNotices.contains("LOAN_OVERDUE A4 2026-01-03"), expectedNotices.toString());
      OverdueNotice a4 = overdueNotice(NoticeKind.LOAN_OVERDUE, "A4");
      // By hand: 2 days x 1000.00 x 0.0006 = 1.20 interest; 1000.00 x 0.0009 = 0.90 penalty.
      assertEquals(List.of(1, "M1", "CURRENT", "1000.00", "1.20", "0.90"),
          List.of(a4.getDpd(), a4.getBucket().name(), a4.getPreviousBucket().name(),
              a4.getPrincipalOwed(), a4.getInterestOwed(), a4.getPenaltyOwed()));
      assertEquals(1, row(e3, "loans", "loan_id", "A4").get("dpd").asInt());
      closeDay(LocalDate.parse("2026-01-04"));
      OverdueNotice a1 = overdueNotice(NoticeKind.LOAN_OVERDUE, "A1");
      // 3 days x 1.20 interest, 1 day x 1.80 penalty.
      assertEquals(List.of(1, "M1", "B1", "2000.00", "3.60", "1.80"),
          List.of(a1.getDpd(), a1.getBucket().name(), a1.getBorrowerId(),
              a1.getPrincipalOwed(), a1.getInterestOwed(), a1.getPenaltyOwed()));
    });
  }

  @Test
  @Order(4)
  void collectionsSendsActionsBackAndThePaymentSystemGoesOn() {
    step(() -> {
      act(CollectionsAction.newBuilder().setActionId("C1").setAction(ActionKind.MARK_MALICIOUS)
          .setBorrowerId("B1").build());
      act(CollectionsAction.newBuilder().setActionId("C2").setAction(ActionKind.WRITE_OFF)
          .setLoanId("A4").build());
      act(CollectionsAction.newBuilder().setActionId("C3").setAction(ActionKind.WRITE_OFF)
          .setLoanId("A2").build()); // settled: NOT_OVERDUE
      act(CollectionsAction.newBuilder().setActionId("C4").setAction(ActionKind.REINSTATE)
          .setBorrowerId("B1").build()); // after C1 on the same key: MALICIOUS
      JsonNode export = awaitExport("C1..C4 decided",
          e -> has(e, "collections_actions", "action_id", "C1", "C2", "C3", "C4"));
      assertAction(export, "C1", "APPLIED", null);
      assertAction(export, "C2", "APPLIED", null);
      assertAction(export, "C3", "REJECTED", "NOT_OVERDUE");
      assertAction(export, "C4", "REJECTED", "MALICIOUS");
      JsonNode b1 = row(export, "borrowers", "borrower_id", "B1");
      assertTrue(b1.get("malicious").asBoolean() && b1.get("blacklisted").asBoolean(), b1.toString());
      JsonNode a4 = row(export, "loans", "loan_id", "A4");
      assertEquals("WRITTEN_OFF", a4.get("status").asText());
      assertEquals(2, a4.get("dpd").asInt(), "a written-off loan keeps its DPD");
      assertEquals("1000.00", export.at("/portfolio/written_off_principal").asText());

      JsonNode before = export;
      pay(repayment("P4", "A4", "200.00")); // on a written-off loan: RECOVERY
      pay(repayment("P5", "A1", "2100.00")); // pays the overdue A1 off: LOAN_CURED
      export = awaitExport("P4, P5 decided", e -> has(e, "payments", "payment_id", "P4", "P5"));
      awaitReceipts();
      assertPayment(export, "P4", "RECOVERY", "0.00", "0.00", "0.00", "0.00", null);
      assertEquals("200.00", row(export, "loans", "loan_id", "A4").get("recovered").asText());
      assertPayment(export, "P5", "APPLIED", "1.80", "3.60", "2000.00", "94.60", null);
      JsonNode a1 = row(export, "loans", "loan_id", "A1");
      assertEquals(List.of("SETTLED", 0, "CURRENT"),
          List.of(a1.get("status").asText(), a1.get("dpd").asInt(), a1.get("bucket").asText()));
      expectedNotices.add("LOAN_CURED A1 " + export.get("business_date").asText());
      awaitNotices();
      OverdueNotice cured = overdueNotice(NoticeKind.LOAN_CURED, "A1");
      JsonNode a1Before = row(before, "loans", "loan_id", "A1");
      assertEquals(List.of(a1Before.get("dpd").asInt(), "CURRENT", a1Before.get("bucket").asText(),
              "0.00", "0.00", "0.00", export.get("business_date").asText(), "B1"),
          List.of(cured.getDpd(), cured.getBucket().name(), cured.getPreviousBucket().name(),
              cured.getPrincipalOwed(), cured.getInterestOwed(), cured.getPenaltyOwed(),
              cured.getDate(), cured.getBorrowerId()));

      // The merchant platform tries again for the malicious borrower.
      LoanApplication a6 = credit("A6", "B1", "500.00", 10, topPlatform());
      send(APPLICATIONS, a6.getBorrowerId(), a6, scenarioLine(a6));
      export = awaitExport("A6 decided", e -> has(e, "applications", "application_id", "A6"));
      assertApplication(export, "A6", "REJECTED", "BLACKLISTED");

      closeDay(LocalDate.parse(export.get("business_date").asText()));
    });
  }

  @Test
  @Order(5)
  void daysCloseUntilABucketChangesAndCollectionsWritesTheLoanOff() {
    step(() -> {
      // A7 (matured 01-02, never repaid) reaches DPD 31 (M2) at the close of 02-01.
      LocalDate day = LocalDate.parse(export().get("business_date").asText());
      while (!day.isAfter(LocalDate.parse("2026-02-01"))) {
        closeDay(day);
        day = day.plusDays(1);
      }
      OverdueNotice m2 = overdueNotice(NoticeKind.BUCKET_CHANGED, "A7");
      // 1 day of interest (1.80), 31 days of penalty at 3000.00 x 0.0009 = 2.70 a day.
      assertEquals(List.of(31, "M2", "M1", "2026-02-01", "3000.00", "1.80", "83.70"),
          List.of(m2.getDpd(), m2.getBucket().name(), m2.getPreviousBucket().name(), m2.getDate(),
              m2.getPrincipalOwed(), m2.getInterestOwed(), m2.getPenaltyOwed()));
      act(CollectionsAction.newBuilder().setActionId("C5").setAction(ActionKind.WRITE_OFF)
          .setLoanId("A7").build());
      JsonNode export = awaitExport("C5 decided", e -> has(e, "collections_actions", "action_id", "C5"));
      assertAction(export, "C5", "APPLIED", null);
      JsonNode a7 = row(export, "loans", "loan_id", "A7");
      assertEquals(List.of("WRITTEN_OFF", 31, "M2"),
          List.of(a7.get("status").asText(), a7.get("dpd").asInt(), a7.get("bucket").asText()));
      assertEquals("4000.00", export.at("/portfolio/written_off_principal").asText());
      assertEquals("0.00", export.at("/portfolio/overdue_principal/M2").asText());
      closeDay(day);
    });
  }

  @Test
  @Order(6)
  void everyReceiptAndNoticeMatchesTheFinalExport() {
    step(() -> {
      JsonNode export = export();
      awaitReceipts();
      checkReceipts(export);
      awaitNotices();
      // Nothing else arrives: give the services a moment to publish anything unexpected.
      Thread.sleep(1000);
      assertEquals(expectedNotices, noticeNames(notices.unique()), "the notices on " + OVERDUE);
      assertEquals(List.of(), receipts.errors(), "unreadable receipts");
      assertEquals(List.of(), notices.errors(), "unreadable notices");
      log(String.format("read %d receipts (%d copies dropped by event_id) and %d notices (%d copies dropped)",
          receipts.unique().size(), receipts.copies(), notices.unique().size(), notices.copies()));
      // Teams that co-partition (e.g. join payments.repayments with loan.receipts) rely
      // on it: the ledger's own keyed outputs follow Kafka's default partitioner, as the
      // README says, so they sit where a Java producer puts the same key.
      List<Subscriber.Got<?>> outputs = new ArrayList<>(receipts.unique());
      outputs.addAll(notices.unique());
      for (Subscriber.Got<?> got : outputs) {
        assertEquals(murmur2Partition(got.key()), got.partition(),
            "the ledger's output keyed " + got.key() + " is not on murmur2(key) % " + PARTITIONS);
      }
      log(String.format("the ledger's %d receipts and notices all sit on murmur2(key) %% %d", outputs.size(), PARTITIONS));
    });
  }

  @Test
  @Order(7)
  void simulateOfTheSameInputsPrintsTheLiveExport() {
    step(() -> {
      Path file = work.resolve("scenario.jsonl");
      StringBuilder text = new StringBuilder();
      for (ObjectNode l : scenario) {
        text.append(JSON.writeValueAsString(l)).append('\n');
      }
      Files.writeString(file, text.toString());
      String out = loanctl("simulate", file.toString());
      JsonNode simulated = JSON.readTree(out);
      JsonNode live = export();
      List<String> diff = new ArrayList<>();
      diff("", simulated, live, diff);
      assertTrue(diff.isEmpty(), "loanctl simulate " + file + " differs from GET /v1/export at:\n  "
          + String.join("\n  ", diff.subList(0, Math.min(diff.size(), 30))));
      assertEquals(simulated, live);
      log("simulate of the " + scenario.size() + " inputs equals the live export");
    });
  }

  // ---------------------------------------------------------------------------------------
  // The roles' messages.

  static Merchant topPlatform() {
    return Merchant.newBuilder().setKind(MerchantKind.PLATFORM).setAnnualSales("5000000.00")
        .setSalesGrowth("0.50").setOrders12M("10000").setSellerRating("5").setActiveDays90("90")
        .build();
  }

  static Merchant offPlatform(String sales, String growth, String turnover, String debt,
      String activeDays, String reviews) {
    return Merchant.newBuilder().setKind(MerchantKind.OFF_PLATFORM).setAnnualSales(sales)
        .setSalesGrowth(growth).setInventoryTurnover(turnover).setDebtRatio(debt)
        .setActiveDays90(activeDays).setPositiveReviewRate(reviews).build();
  }

  static LoanApplication credit(String id, String borrower, String amount, int term, Merchant m) {
    return LoanApplication.newBuilder().setApplicationId(id).setBorrowerId(borrower)
        .setProduct(Product.CREDIT).setAmount(amount).setCurrency("CNY").setTermDays(term)
        .setMerchant(m).build();
  }

  static Inputs.Order order(String id, String amount) {
    return Inputs.Order.newBuilder().setOrderId(id).setAmount(amount).build();
  }

  static Repayment repayment(String id, String loan, String amount) {
    return Repayment.newBuilder().setPaymentId(id).setLoanId(loan).setAmount(amount).build();
  }

  void pay(Repayment r) throws Exception {
    send(REPAYMENTS, r.getLoanId(), r, line("repayment").put("payment_id", r.getPaymentId())
        .put("loan_id", r.getLoanId()).put("amount", r.getAmount()));
    paymentsSent.computeIfAbsent(r.getPaymentId(), k -> new ArrayList<>()).add(r.getAmount());
  }

  void act(CollectionsAction a) throws Exception {
    // Key: the id the action names (borrower for MARK_MALICIOUS and REINSTATE, loan for WRITE_OFF).
    String key = a.hasBorrowerId() ? a.getBorrowerId() : a.getLoanId();
    ObjectNode l = line("collections_action").put("action_id", a.getActionId())
        .put("action", a.getAction().name());
    if (a.hasBorrowerId()) {
      l.put("borrower_id", a.getBorrowerId());
    }
    if (a.hasLoanId()) {
      l.put("loan_id", a.getLoanId());
    }
    send(ACTIONS, key, a, l);
  }

  /** Publishes one input, waits for the broker's acknowledgement, and records its scenario line. */
  void send(String topic, String key, Message value, ObjectNode scenarioLine) throws Exception {
    RecordMetadata md = producer.send(new ProducerRecord<>(topic, key, value.toByteArray()))
        .get(30, TimeUnit.SECONDS);
    assertEquals(murmur2Partition(key), md.partition(),
        "the default partitioner puts key " + key + " on murmur2(key) % " + PARTITIONS);
    scenario.add(scenarioLine);
  }

  static int murmur2Partition(String key) {
    return Utils.toPositive(Utils.murmur2(key.getBytes(UTF_8))) % PARTITIONS;
  }

  // ---------------------------------------------------------------------------------------
  // Scenario lines (SPEC section 10) from the very messages sent.

  static ObjectNode line(String type) {
    return JSON.createObjectNode().put("type", type);
  }

  static ObjectNode scenarioLine(LoanApplication a) {
    ObjectNode l = line("application").put("application_id", a.getApplicationId())
        .put("borrower_id", a.getBorrowerId()).put("product", a.getProduct().name())
        .put("amount", a.getAmount()).put("term_days", a.getTermDays());
    if (!a.getCurrency().isEmpty()) {
      l.put("currency", a.getCurrency());
    }
    if (a.getOrdersCount() > 0) {
      ArrayNode orders = l.putArray("orders");
      for (Inputs.Order o : a.getOrdersList()) {
        orders.addObject().put("order_id", o.getOrderId()).put("amount", o.getAmount());
      }
    }
    // The Merchant message's field names are the scenario's keys; figures are decimal strings.
    ObjectNode m = l.putObject("merchant");
    for (Map.Entry<FieldDescriptor, Object> f : a.getMerchant().getAllFields().entrySet()) {
      Object v = f.getValue();
      m.put(f.getKey().getName(), v instanceof EnumValueDescriptor ev ? ev.getName() : v.toString());
    }
    return l;
  }

  // ---------------------------------------------------------------------------------------
  // Day closes and the collections team's view of them.

  /**
   * Closes {@code date} with loanctl, waits until the export shows the next day open, and checks
   * that loan.overdue carries exactly the notices the change of the export calls for.
   */
  JsonNode closeDay(LocalDate date) throws Exception {
    JsonNode before = awaitExport(date + " open", e -> date.toString().equals(e.path("business_date").asText()));
    loanctl("close-day", "--brokers", brokers, "--date", date.toString());
    scenario.add(line("close_day").put("date", date.toString()));
    String next = date.plusDays(1).toString();
    JsonNode after = awaitExport(next + " open", e -> next.equals(e.path("business_date").asText()));
    for (JsonNode loan : after.get("loans")) {
      String id = loan.get("loan_id").asText();
      JsonNode was = find(before, "loans", "loan_id", id);
      int dpdBefore = was == null ? 0 : was.get("dpd").asInt();
      String bucketBefore = was == null ? "CURRENT" : was.get("bucket").asText();
      if (!"ACTIVE".equals(loan.get("status").asText())) {
        continue;
      }
      if (dpdBefore == 0 && loan.get("dpd").asInt() > 0) {
        expectedNotices.add("LOAN_OVERDUE " + id + " " + date);
      } else if (!bucketBefore.equals(loan.get("bucket").asText())) {
        expectedNotices.add("BUCKET_CHANGED " + id + " " + date);
      }
    }
    for (JsonNode b : after.get("borrowers")) {
      JsonNode was = find(before, "borrowers", "borrower_id", b.get("borrower_id").asText());
      if (b.get("blacklisted").asBoolean() && (was == null || !was.get("blacklisted").asBoolean())) {
        expectedNotices.add("BLACKLISTED " + b.get("borrower_id").asText() + " " + date);
      }
    }
    awaitNotices();
    // Each notice of this close against the export right after it.
    for (CollectionsNotice n : notices.values()) {
      if (n.hasOverdue() && n.getOverdue().getDate().equals(date.toString())
          && n.getOverdue().getKind() != NoticeKind.LOAN_CURED) {
        OverdueNotice o = n.getOverdue();
        JsonNode loan = row(after, "loans", "loan_id", o.getLoanId());
        JsonNode was = find(before, "loans", "loan_id", o.getLoanId());
        String where = "notice " + n.getEventId() + " " + o.getKind() + " " + o.getLoanId();
        assertEquals(loan.get("borrower_id").asText(), o.getBorrowerId(), where);
        assertEquals(loan.get("dpd").asInt(), o.getDpd(), where + " dpd");
        assertEquals(loan.get("bucket").asText(), o.getBucket().name(), where + " bucket");
        assertEquals(was == null ? "CURRENT" : was.get("bucket").asText(), o.getPreviousBucket().name(),
            where + " previous bucket");
        assertEquals(loan.get("principal_outstanding").asText(), o.getPrincipalOwed(), where + " principal");
        assertEquals(loan.get("interest_owed").asText(), o.getInterestOwed(), where + " interest");
        assertEquals(loan.get("penalty_owed").asText(), o.getPenaltyOwed(), where + " penalty");
      }
      if (n.hasBlacklisted() && n.getBlacklisted().getDate().equals(date.toString())) {
        BorrowerBlacklisted b = n.getBlacklisted();
        JsonNode loan = row(after, "loans", "loan_id", b.getLoanId());
        assertEquals(loan.get("borrower_id").asText(), b.getBorrowerId(), "blacklisting " + n.getEventId());
        assertEquals(loan.get("dpd").asInt(), b.getDpd(), "blacklisting " + n.getEventId());
        assertTrue(row(after, "borrowers", "borrower_id", b.getBorrowerId()).get("blacklisted").asBoolean());
      }
    }
    log("closed " + date);
    return after;
  }

  void awaitNotices() throws Exception {
    notices.await("the notices " + expectedNotices, WAIT,
        got -> noticeNames(got).containsAll(expectedNotices));
    for (Subscriber.Got<CollectionsNotice> g : notices.unique()) {
      CollectionsNotice n = g.message();
      String borrower = n.hasOverdue() ? n.getOverdue().getBorrowerId() : n.getBlacklisted().getBorrowerId();
      assertEquals(borrower, g.key(), "loan.overdue is keyed by borrower id");
      assertTrue(n.hasOverdue() || n.hasBlacklisted(), "a notice without its oneof: " + n);
      if (n.hasOverdue()) {
        assertTrue(n.getOverdue().getKind() != NoticeKind.NOTICE_KIND_UNSPECIFIED, n.toString());
      }
    }
  }

  static Set<String> noticeNames(List<Subscriber.Got<CollectionsNotice>> got) {
    return got.stream().map(g -> {
      CollectionsNotice n = g.message();
      return n.hasOverdue()
          ? n.getOverdue().getKind().name() + " " + n.getOverdue().getLoanId() + " " + n.getOverdue().getDate()
          : "BLACKLISTED " + n.getBlacklisted().getBorrowerId() + " " + n.getBlacklisted().getDate();
    }).collect(Collectors.toCollection(TreeSet::new));
  }

  OverdueNotice overdueNotice(NoticeKind kind, String loanId) {
    List<OverdueNotice> found = notices.values().stream().filter(CollectionsNotice::hasOverdue)
        .map(CollectionsNotice::getOverdue)
        .filter(o -> o.getKind() == kind && o.getLoanId().equals(loanId)).toList();
    assertEquals(1, found.size(), kind + " notices for " + loanId + ": " + found);
    return found.get(0);
  }

  // ---------------------------------------------------------------------------------------
  // Receipts.

  /** Waits until every repayment sent has its receipt (one per message, re-sends included). */
  void awaitReceipts() throws Exception {
    int sent = paymentsSent.values().stream().mapToInt(List::size).sum();
    receipts.await(sent + " receipts", WAIT, got -> got.size() >= sent);
  }

  /** Every receipt read, decoded and compared with the export's payments. */
  void checkReceipts(JsonNode export) {
    Map<String, List<RepaymentReceipt>> byPayment = new TreeMap<>();
    for (Subscriber.Got<RepaymentReceipt> g : receipts.unique()) {
      RepaymentReceipt r = g.message();
      assertEquals(r.getLoanId(), g.key(), "loan.receipts is keyed by loan id: " + r);
      byPayment.computeIfAbsent(r.getPaymentId(), k -> new ArrayList<>()).add(r);
    }
    assertEquals(paymentsSent.keySet(), byPayment.keySet(), "payment ids with a receipt");
    for (Map.Entry<String, List<RepaymentReceipt>> e : byPayment.entrySet()) {
      String id = e.getKey();
      List<String> amounts = paymentsSent.get(id);
      List<RepaymentReceipt> rs = e.getValue();
      assertEquals(amounts.size(), rs.size(), "one receipt per message sent for " + id + ": " + rs);
      List<RepaymentReceipt> firsts = rs.stream().filter(r -> r.getStatus() != ReceiptStatus.DUPLICATE).toList();
      assertEquals(1, firsts.size(), "exactly one receipt that is not DUPLICATE for " + id + ": " + rs);
      for (RepaymentReceipt dup : rs) {
        if (dup.getStatus() == ReceiptStatus.DUPLICATE) {
          assertEquals(List.of("0.00", "0.00", "0.00", "0.00", "0.00", false),
              List.of(dup.getPenalty(), dup.getInterest(), dup.getPrincipal(), dup.getOverpayment(),
                  dup.getAmount(), dup.hasReason()), "duplicate receipt " + dup);
        }
      }
      RepaymentReceipt r = firsts.get(0);
      JsonNode p = row(export, "payments", "payment_id", id);
      String where = "receipt " + r.getEventId() + " for " + id;
      assertEquals(p.get("loan_id").asText(), r.getLoanId(), where);
      assertEquals(p.get("status").asText(), r.getStatus().name(), where + " status");
      assertEquals(p.get("penalty").asText(), r.getPenalty(), where + " penalty");
      assertEquals(p.get("interest").asText(), r.getInterest(), where + " interest");
      assertEquals(p.get("principal").asText(), r.getPrincipal(), where + " principal");
      assertEquals(p.get("overpayment").asText(), r.getOverpayment(), where + " overpayment");
      if (p.get("reason").isNull()) {
        assertFalse(r.hasReason(), where + " has a reason: " + r.getReason());
      } else {
        assertTrue(r.hasReason(), where + " lacks its reason");
        assertEquals(p.get("reason").asText(), r.getReason().name(), where + " reason");
      }
      BigDecimal sum = Stream.of(r.getPenalty(), r.getInterest(), r.getPrincipal(), r.getOverpayment())
          .map(BigDecimal::new).reduce(BigDecimal.ZERO, BigDecimal::add);
      switch (r.getStatus()) {
        case APPLIED -> {
          assertEquals(amounts.get(0), r.getAmount(), where + " amount");
          assertEquals(new BigDecimal(r.getAmount()), sum, where + ": the parts add up to the amount");
        }
        case RECOVERY -> {
          assertEquals(amounts.get(0), r.getAmount(), where + " recovered amount");
          assertEquals(0, sum.signum(), where);
        }
        case REJECTED -> assertEquals("0.00", r.getAmount(), where + " amount");
        default -> fail(where + ": unexpected status " + r.getStatus());
      }
    }
    assertEquals(paymentsSent.size(), export.get("payments").size(), "payments in the export");
  }

  // ---------------------------------------------------------------------------------------
  // Checks on the export.

  static void assertApplication(JsonNode export, String id, String decision, String... reasons) {
    JsonNode a = row(export, "applications", "application_id", id);
    List<String> got = new ArrayList<>();
    a.get("reasons").forEach(r -> got.add(r.asText()));
    assertEquals(decision + " " + List.of(reasons), a.get("decision").asText() + " " + got, "application " + id);
  }

  static void assertPayment(JsonNode export, String id, String status, String penalty, String interest,
      String principal, String overpayment, String reason) {
    JsonNode p = row(export, "payments", "payment_id", id);
    assertEquals(List.of(status, penalty, interest, principal, overpayment, String.valueOf(reason)),
        List.of(p.get("status").asText(), p.get("penalty").asText(), p.get("interest").asText(),
            p.get("principal").asText(), p.get("overpayment").asText(),
            p.get("reason").isNull() ? "null" : p.get("reason").asText()),
        "payment " + id);
  }

  static void assertAction(JsonNode export, String id, String status, String reason) {
    JsonNode a = row(export, "collections_actions", "action_id", id);
    assertEquals(status + " " + reason, a.get("status").asText() + " "
        + (a.get("reason").isNull() ? null : a.get("reason").asText()), "collections action " + id);
  }

  static JsonNode find(JsonNode export, String list, String idField, String id) {
    for (JsonNode r : export.path(list)) {
      if (id.equals(r.path(idField).asText())) {
        return r;
      }
    }
    return null;
  }

  static JsonNode row(JsonNode export, String list, String idField, String id) {
    JsonNode r = find(export, list, idField, id);
    assertNotNull(r, list + " has no " + idField + " " + id);
    return r;
  }

  static boolean has(JsonNode export, String list, String idField, String... ids) {
    return Stream.of(ids).allMatch(id -> find(export, list, idField, id) != null);
  }

  /** The JSON paths where two trees differ. */
  static void diff(String path, JsonNode a, JsonNode b, List<String> out) {
    if (a.equals(b)) {
      return;
    }
    if (a.isObject() && b.isObject()) {
      Set<String> names = new TreeSet<>();
      a.fieldNames().forEachRemaining(names::add);
      b.fieldNames().forEachRemaining(names::add);
      for (String n : names) {
        if (!a.has(n) || !b.has(n)) {
          out.add(path + "/" + n + ": only in " + (a.has(n) ? "simulate" : "the live export"));
        } else {
          diff(path + "/" + n, a.get(n), b.get(n), out);
        }
      }
    } else if (a.isArray() && b.isArray() && a.size() == b.size()) {
      for (int i = 0; i < a.size(); i++) {
        diff(path + "/" + i, a.get(i), b.get(i), out);
      }
    } else {
      out.add(path + ": simulate " + a + ", live " + b);
    }
  }

  // ---------------------------------------------------------------------------------------
  // The live ledger.

  JsonNode export() throws IOException, InterruptedException {
    HttpResponse<String> r = http.send(HttpRequest.newBuilder(URI.create(api + "/v1/export"))
        .timeout(Duration.ofSeconds(10)).GET().build(), HttpResponse.BodyHandlers.ofString());
    if (r.statusCode() != 200) {
      throw new IOException("GET /v1/export: HTTP " + r.statusCode() + ": " + r.body());
    }
    return JSON.readTree(r.body());
  }

  /** Polls the live export until {@code done} holds: the ledger decides inputs asynchronously. */
  JsonNode awaitExport(String what, Predicate<JsonNode> done) throws Exception {
    long deadline = System.nanoTime() + WAIT.toNanos();
    JsonNode last = null;
    while (true) {
      ledgerAlive();
      last = export();
      if (done.test(last)) {
        return last;
      }
      if (System.nanoTime() > deadline) {
        fail("waited " + WAIT.toSeconds() + " s for " + what + "; the export is " + last);
      }
      Thread.sleep(50);
    }
  }

  void awaitApi() throws Exception {
    long deadline = System.nanoTime() + WAIT.toNanos();
    while (true) {
      ledgerAlive();
      try {
        export();
        return;
      } catch (IOException e) {
        if (System.nanoTime() > deadline) {
          fail("loanctl up did not answer GET " + api + "/v1/export within " + WAIT.toSeconds() + " s: " + e);
        }
        Thread.sleep(200);
      }
    }
  }

  void ledgerAlive() {
    if (ledger != null && !ledger.isAlive()) {
      fail("loanctl up exited with status " + ledger.exitValue() + " (its log is printed below)");
    }
  }

  String loanctl(String... args) throws Exception {
    String[] cmd = new String[args.length + 1];
    cmd[0] = loanctl;
    System.arraycopy(args, 0, cmd, 1, args.length);
    return run(WAIT, cmd);
  }

  /** Runs a command to its end; its standard output, or a failure with everything it printed. */
  String run(Duration timeout, String... cmd) throws Exception {
    Path out = Files.createTempFile(work, "cmd-", ".out");
    Path err = Files.createTempFile(work, "cmd-", ".err");
    Process p = new ProcessBuilder(cmd).redirectOutput(out.toFile()).redirectError(err.toFile()).start();
    if (!p.waitFor(timeout.toSeconds(), TimeUnit.SECONDS)) {
      p.destroyForcibly().waitFor();
      fail(String.join(" ", cmd) + ": no answer within " + timeout.toSeconds() + " s\n" + Files.readString(err));
    }
    String stdout = Files.readString(out);
    String stderr = Files.readString(err);
    Files.delete(out);
    Files.delete(err);
    if (p.exitValue() != 0) {
      fail(String.join(" ", cmd) + ": exit status " + p.exitValue() + "\n" + stderr + stdout);
    }
    return stdout;
  }

  // ---------------------------------------------------------------------------------------
  // Plumbing.

  interface Body {
    void run() throws Exception;
  }

  /** Runs one step unless an earlier one failed; on failure prints the ledger's log. */
  void step(Body body) {
    Assumptions.assumeFalse(failed, "an earlier step failed");
    try {
      body.run();
    } catch (Throwable t) {
      failed = true;
      dumpLogs();
      if (t instanceof Error e) {
        throw e;
      }
      throw new AssertionError(t);
    }
  }

  void dumpLogs() {
    for (Path p : new Path[] {ledgerLog, kafkaDir == null ? null : kafkaDir.resolve("broker.log")}) {
      if (p != null && Files.exists(p)) {
        try {
          List<String> lines = Files.readAllLines(p);
          System.err.println("----- last lines of " + p + " -----");
          lines.subList(Math.max(0, lines.size() - 40), lines.size()).forEach(System.err::println);
        } catch (IOException e) {
          System.err.println("reading " + p + ": " + e);
        }
      }
    }
  }

  void log(String message) {
    System.err.printf("[java-client %5.1f s] %s%n", (System.nanoTime() - started) / 1e9, message);
  }

  static int freePort() throws IOException {
    try (ServerSocket s = new ServerSocket(0, 1, java.net.InetAddress.getLoopbackAddress())) {
      return s.getLocalPort();
    }
  }

  static void deleteTree(Path root) throws IOException {
    try (Stream<Path> walk = Files.walk(root)) {
      for (Iterator<Path> it = walk.sorted(Comparator.reverseOrder()).iterator(); it.hasNext(); ) {
        Files.deleteIfExists(it.next());
      }
    }
  }
}

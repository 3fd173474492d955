package loanledger.client;

import static org.junit.jupiter.api.Assertions.fail;

import com.google.protobuf.Descriptors.EnumValueDescriptor;
import com.google.protobuf.Descriptors.FieldDescriptor;
import com.google.protobuf.InvalidProtocolBufferException;
import com.google.protobuf.Message;
import com.google.protobuf.Parser;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.function.Function;
import java.util.function.Predicate;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.common.errors.WakeupException;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.apache.kafka.common.serialization.StringDeserializer;

/**
 * One team's subscription to an output topic: a KafkaConsumer in a consumer group, polled on its
 * own thread, decoding every record with the generated class.
 *
 * <p>Delivery is at least once (outputs.proto): a copy re-sent after a restart of the ledger has
 * the event_id of the first one, so records are kept by event_id and a copy is only counted.
 */
final class Subscriber<T extends Message> implements AutoCloseable {
  record Got<T>(String key, int partition, long offset, T message) {}

  private final String topic;
  private final Parser<T> parser;
  private final Function<T, String> eventId;
  private final KafkaConsumer<String, byte[]> consumer;
  private final Thread thread;
  private final Map<String, Got<T>> byId = new LinkedHashMap<>();
  private final List<String> errors = new ArrayList<>();
  private int copies;
  private volatile boolean stop;

  Subscriber(String brokers, String topic, String group, Parser<T> parser, Function<T, String> eventId) {
    this.topic = topic;
    this.parser = parser;
    this.eventId = eventId;
    Properties p = new Properties();
    p.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, brokers);
    p.put(ConsumerConfig.GROUP_ID_CONFIG, group);
    p.put(ConsumerConfig.CLIENT_ID_CONFIG, group);
    p.put(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class.getName());
    p.put(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, ByteArrayDeserializer.class.getName());
    // A new group reads the topic from its beginning (Kafka's default is "latest").
    p.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest");
    // Short group timeouts so that a test's rebalances are quick (the broker's minimum).
    p.put(ConsumerConfig.SESSION_TIMEOUT_MS_CONFIG, "6000");
    p.put(ConsumerConfig.HEARTBEAT_INTERVAL_MS_CONFIG, "2000");
    consumer = new KafkaConsumer<>(p);
    consumer.subscribe(List.of(topic));
    thread = new Thread(this::pollLoop, "subscriber-" + topic);
    thread.setDaemon(true);
    thread.start();
  }

  private void pollLoop() {
    try {
      while (!stop) {
        for (ConsumerRecord<String, byte[]> r : consumer.poll(Duration.ofMillis(100))) {
          accept(r);
        }
      }
    } catch (WakeupException e) {
      // close() asked us to stop.
    } catch (RuntimeException e) {
      synchronized (this) {
        errors.add("polling " + topic + ": " + e);
      }
    } finally {
      consumer.close(Duration.ofSeconds(5));
    }
  }

  private synchronized void accept(ConsumerRecord<String, byte[]> r) {
    String where = topic + "/" + r.partition() + "/" + r.offset();
    T m;
    try {
      m = parser.parseFrom(r.value());
    } catch (InvalidProtocolBufferException e) {
      errors.add(where + ": not a " + parser + ": " + e.getMessage());
      return;
    }
    List<String> problems = new ArrayList<>();
    strict(m, "", problems);
    if (!problems.isEmpty()) {
      errors.add(where + ": " + problems + " in " + m);
    }
    String id = eventId.apply(m);
    if (id.isEmpty()) {
      errors.add(where + ": no event_id in " + m);
    }
    if (byId.containsKey(id)) {
      copies++; // a re-sent copy: same id, handled once
    } else {
      byId.put(id, new Got<>(r.key(), r.partition(), r.offset(), m));
    }
  }

  /** A reader must not guess: no field outside the schema, no enum value it does not know. */
  static void strict(Message m, String path, List<String> problems) {
    if (!m.getUnknownFields().asMap().isEmpty()) {
      problems.add(path + " unknown fields " + m.getUnknownFields().asMap().keySet());
    }
    for (Map.Entry<FieldDescriptor, Object> f : m.getAllFields().entrySet()) {
      List<?> values = f.getKey().isRepeated() ? (List<?>) f.getValue() : List.of(f.getValue());
      for (Object v : values) {
        if (v instanceof EnumValueDescriptor ev && (ev.getIndex() < 0 || ev.getNumber() == 0)) {
          problems.add(path + f.getKey().getName() + " = enum value " + ev.getNumber());
        } else if (v instanceof Message sub) {
          strict(sub, path + f.getKey().getName() + ".", problems);
        }
      }
    }
  }

  synchronized List<Got<T>> unique() {
    return new ArrayList<>(byId.values());
  }

  synchronized List<T> values() {
    return byId.values().stream().map(Got::message).toList();
  }

  synchronized int copies() {
    return copies;
  }

  synchronized List<String> errors() {
    return new ArrayList<>(errors);
  }

  /** Waits until the messages read so far satisfy {@code done}. */
  List<Got<T>> await(String what, Duration wait, Predicate<List<Got<T>>> done) throws InterruptedException {
    long deadline = System.nanoTime() + wait.toNanos();
    while (true) {
      List<Got<T>> got = unique();
      if (done.test(got)) {
        return got;
      }
      if (!errors().isEmpty()) {
        fail("reading " + topic + ": " + errors());
      }
      if (System.nanoTime() > deadline) {
        fail("waited " + wait.toSeconds() + " s on " + topic + " for " + what + "; read "
            + got.stream().map(g -> g.message().toString().replace('\n', ' ')).toList());
      }
      Thread.sleep(50);
    }
  }

  @Override
  public void close() throws InterruptedException {
    stop = true;
    consumer.wakeup();
    thread.join(10_000);
  }
}

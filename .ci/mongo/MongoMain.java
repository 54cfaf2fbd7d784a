import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.locks.ReentrantLock;

import de.bwaldvogel.mongo.MongoServer;
import de.bwaldvogel.mongo.MongoVersion;
import de.bwaldvogel.mongo.backend.h2.H2Backend;
import de.bwaldvogel.mongo.bson.Document;
import io.netty.channel.Channel;

/**
 * Local MongoDB-wire server for development and CI (no Docker): mongo-java-server with the H2 MVStore file backend.
 *
 * <pre>
 *   java -cp 'classes:lib/*' MongoMain DATA_FILE [PORT] [BIND_HOST]
 * </pre>
 *
 * System properties:
 * <ul>
 *   <li>{@code mongo.version} (default {@code 6.0.0}) and {@code mongo.wireVersion} (default {@code 17}): what
 *       {@code ismaster}/{@code buildInfo} report. mongo-java-server's own default is wire 8, which pymongo >= 4.18
 *       (MIN_SUPPORTED_WIRE_VERSION = 9) refuses.</li>
 *   <li>{@code mongo.commitEachCommand} (default {@code true}): commit the MVStore after every command that left
 *       unsaved changes, so an acknowledged write survives {@code kill -9} (a group commit: commands that finish
 *       while another commits share the next commit). With {@code false} H2 only auto-commits about once a
 *       second.</li>
 *   <li>{@code mongo.oplog} (default {@code false}): enable the oplog, i.e. change streams. Off by default: it is
 *       an ordinary (uncapped) collection in the same H2 file, so it grows without bound and doubles write cost.</li>
 * </ul>
 */
public final class MongoMain {

    private MongoMain() {
    }

    /** Reports a configurable MongoDB version / wire version. */
    record ReportedVersion(List<Integer> versionArray, int wireVersion) implements MongoVersion {
        static ReportedVersion parse(String version, int wireVersion) {
            String[] parts = version.split("\\.");
            Integer[] array = new Integer[] {0, 0, 0};
            for (int i = 0; i < Math.min(parts.length, 3); i++) {
                array[i] = Integer.valueOf(parts[i]);
            }
            return new ReportedVersion(List.of(array), wireVersion);
        }

        @Override
        public List<Integer> getVersionArray() {
            return versionArray;
        }

        @Override
        public int getWireVersion() {
            return wireVersion;
        }
    }

    /**
     * H2 file backend that makes each command durable before it is acknowledged, with a group commit: a command
     * whose changes a commit started after them has already stored is acknowledged without a commit of its own.
     * The netty workers handle commands concurrently while one of them commits; the commands that finished
     * meanwhile then share the next commit instead of each writing a chunk of its own in turn (under many
     * concurrent writers, one commit per command queued every command, reads included, behind the others'
     * commits). Durability is unchanged: no command is answered before a commit that began after its changes
     * has returned.
     */
    static final class CommittingH2Backend extends H2Backend {
        /** The command that reports the group commit's counters (tests, diagnostics). */
        static final String STATS_COMMAND = "llmtsCommitStats";

        private final boolean commitEachCommand;
        private final ReentrantLock commitLock = new ReentrantLock();
        private final AtomicLong commitsStarted = new AtomicLong();
        private final AtomicLong commandsWaited = new AtomicLong();
        private volatile long commitsDone;

        CommittingH2Backend(String fileName, boolean commitEachCommand) {
            super(fileName);
            this.commitEachCommand = commitEachCommand;
        }

        @Override
        public Document handleCommand(Channel channel, String databaseName, String command, Document query) {
            if (STATS_COMMAND.equals(command)) {
                Document stats = new Document("commits", commitsDone);
                stats.put("commandsCommitted", commandsWaited.get());
                stats.put("ok", 1.0);
                return stats;
            }
            try {
                return super.handleCommand(channel, databaseName, command, query);
            } finally {
                if (commitEachCommand) {
                    commitCovering();
                }
            }
        }

        /** Returns once a commit that started after this command's changes has stored them. */
        private void commitCovering() {
            long seen = commitsStarted.get(); // any commit numbered above this one starts after our changes
            if (!getMvStore().hasUnsavedChanges() && commitsDone == seen) {
                return; // nothing unsaved and no commit in progress: nothing of ours to wait for
            }
            commandsWaited.incrementAndGet();
            commitLock.lock();
            try {
                if (commitsDone > seen) {
                    return; // stored by a commit another command ran while we waited
                }
                long number = commitsStarted.incrementAndGet();
                commit();
                commitsDone = number;
            } finally {
                commitLock.unlock();
            }
        }
    }

    public static void main(String[] args) throws Exception {
        if (args.length < 1 || args.length > 3) {
            System.err.println("usage: MongoMain DATA_FILE [PORT] [BIND_HOST]");
            System.exit(2);
        }
        Path dataFile = Path.of(args[0]).toAbsolutePath();
        int port = args.length > 1 ? Integer.parseInt(args[1]) : 27017;
        String host = args.length > 2 ? args[2] : "127.0.0.1";
        if (dataFile.getParent() != null) {
            Files.createDirectories(dataFile.getParent());
        }

        MongoVersion version = ReportedVersion.parse(
            System.getProperty("mongo.version", "6.0.0"),
            Integer.getInteger("mongo.wireVersion", 17));
        boolean commitEachCommand = Boolean.parseBoolean(System.getProperty("mongo.commitEachCommand", "true"));

        CommittingH2Backend backend = new CommittingH2Backend(dataFile.toString(), commitEachCommand);
        backend.version(version);
        MongoServer server = new MongoServer(backend);
        if (Boolean.parseBoolean(System.getProperty("mongo.oplog", "false"))) {
            server.enableOplog();
        }

        AtomicBoolean stopped = new AtomicBoolean();
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            if (stopped.compareAndSet(false, true)) {
                System.out.println("mongo-wire: shutting down, closing " + dataFile);
                // shutdownNow(): stop listening, close client channels, stop netty, then backend.close()
                // which closes the MVStore (final commit + file close).
                server.shutdownNow();
                System.out.println("mongo-wire: stopped");
                System.out.flush();
            }
        }, "mongo-shutdown"));

        server.bind(host, port);
        System.out.println("mongo-wire: listening on " + host + ":" + port + " data=" + dataFile
            + " version=" + version.toVersionString() + " wire=" + version.getWireVersion()
            + " commitEachCommand=" + commitEachCommand);
        System.out.flush();
    }
}

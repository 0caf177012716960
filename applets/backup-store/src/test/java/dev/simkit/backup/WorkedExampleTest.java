package dev.simkit.backup;

import dev.simkit.testkit.Hex;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Locale;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

import org.junit.jupiter.api.Test;

/**
 * Replays applet-spec/vectors/backup-store.json (backup-store.md §9, produced by
 * {@code simkit_core::backup::worked_example()}) on a freshly installed applet, comparing every
 * full response (data ‖ SW) byte for byte. The file path comes from the {@code simkit.vectors}
 * system property (set in the pom); a missing file fails the test.
 */
class WorkedExampleTest {

    static JsonNode vectors() throws Exception {
        String path = System.getProperty("simkit.vectors");
        assertTrue(path != null && !path.isBlank(), "system property simkit.vectors is not set");
        Path p = Path.of(path);
        assertTrue(Files.isRegularFile(p), "shared vector file missing: " + p.toAbsolutePath());
        return new ObjectMapper().readTree(p.toFile());
    }

    @Test
    void replaysTheWorkedExampleByteForByte() throws Exception {
        replay(BackupStore.class);
    }

    /** The same conversation with every data field received 1, 2, 7 or 64 bytes at a time. */
    @Test
    void replaysTheWorkedExampleWithDataFieldsInSmallPieces() throws Exception {
        for (int piece : new int[] {1, 2, 7, 64}) {
            PiecewiseBackupStore.piece = piece;
            replay(PiecewiseBackupStore.class);
        }
    }

    static void replay(Class<? extends javacard.framework.Applet> applet) throws Exception {
        JsonNode root = vectors();
        assertEquals(Card.AID_HEX, root.get("aid").asText().toUpperCase(Locale.ROOT));
        Card card = new Card(root.get("install_params").asText(), applet);
        JsonNode steps = root.get("steps");
        assertTrue(steps != null && steps.isArray() && steps.size() > 1, "missing steps");
        int n = 0;
        for (JsonNode step : steps) {
            String cmd = step.get("command").asText();
            String want = step.get("response").asText().toUpperCase(Locale.ROOT);
            if (n++ == 0 && cmd.startsWith("00A40400")) {
                // The card is already selected; select again, as the conversation does.
            }
            String got = Hex.s(card.send(cmd));
            assertEquals(want, got, applet.getSimpleName() + " step " + step.get("step").asText() + " " + step.get("name").asText() + ": " + cmd);
        }
        assertEquals(37, n, "the §9 table has 37 steps");
    }

    @Test
    void recordDigestsOfTheVectorsMatch() throws Exception {
        for (JsonNode r : vectors().get("records")) {
            assertEquals(r.get("sha256").asText().toUpperCase(Locale.ROOT),
                    Hex.s(Records.sha256(Hex.b(r.get("data").asText()))), r.get("name").asText());
        }
    }
}

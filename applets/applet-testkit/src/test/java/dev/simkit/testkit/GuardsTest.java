package dev.simkit.testkit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.TreeSet;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The shared guards must notice what they guard against, or the applet tests prove nothing. */
class GuardsTest {

    /** Everything a card cannot run: a long, a String, java.util. */
    static final class NotJavaCard {
        static long big(String s) {
            return java.util.Objects.hash(s) * 1_000_000_007L;
        }
    }

    /** Only what a card runs. */
    static final class JavaCardOk {
        static short add(short a, short b) {
            return (short) (a + b);
        }
    }

    @Test
    void theSubsetGuardSeesViolations() throws Exception {
        TreeSet<String> bad = JavaCardSubset.problems("dev/simkit/testkit/", NotJavaCard.class);
        assertTrue(bad.stream().anyMatch(s -> s.contains("java/util/Objects")), bad::toString);
        assertTrue(bad.stream().anyMatch(s -> s.contains("(Ljava/lang/String;)J")), bad::toString);
        assertTrue(bad.stream().anyMatch(s -> s.contains("long constant")), bad::toString);
        assertEquals(new TreeSet<>(), JavaCardSubset.problems("dev/simkit/testkit/", JavaCardOk.class));
    }

    /** A constants class as an applet would have it. */
    static final class Constants {
        static final short SW_WRONG_LENGTH = 0x6700;
        static final short SW_MODULE_BLOCKED = (short) 0x9C08;
    }

    @Test
    void theTableGuardSeesMismatches(@TempDir Path dir) throws Exception {
        StringBuilder table = new StringBuilder();
        for (int i = 0; i < 20; i++) {
            table.append(String.format("| 6A%02X | Filler%d | filler |%n", i, i));
        }
        table.append("| 6700 | WrongLength | wrong length |\n| 9C08 | ModuleBlocked | module blocked |\n");
        Path ok = Files.writeString(dir.resolve("ok.md"), table);
        assertEquals(List.of(), StatusWordsTable.mismatches(ok, Constants.class, 0x9C));

        Path renamed = Files.writeString(dir.resolve("renamed.md"), table.toString().replace("ModuleBlocked", "Blocked"));
        // Seen from both sides: the constant's name differs, and the row has no constant.
        assertEquals(2, StatusWordsTable.mismatches(renamed, Constants.class, 0x9C).size());
        Path extra = Files.writeString(dir.resolve("extra.md"), table + "| 9C09 | LimitUpdateReplayed | x |\n");
        assertTrue(StatusWordsTable.mismatches(extra, Constants.class, 0x9C).get(0).contains("9C09"));
        assertEquals("INCORRECT_P1P2", StatusWordsTable.snake("IncorrectP1P2"));
    }
}

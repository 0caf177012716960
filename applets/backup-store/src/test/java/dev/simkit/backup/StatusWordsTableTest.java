package dev.simkit.backup;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.nio.file.Path;
import java.util.List;

import dev.simkit.testkit.StatusWordsTable;
import org.junit.jupiter.api.Test;

/**
 * Every {@code SW_} constant of {@link Constants} is a row {@code | XXXX | Name | meaning |} of
 * applet-spec/status-words.md with the same code, its name in UPPER_SNAKE case; every row of this
 * applet's range (9Dxx) has a constant.
 */
class StatusWordsTableTest {

    static final Path TABLE = Path.of(System.getProperty("simkit.statusWords", "../../applet-spec/status-words.md"));

    @Test
    void constantsAndTableAgree() throws Exception {
        assertEquals(List.of(), StatusWordsTable.mismatches(TABLE, Constants.class, 0x9D));
    }
}

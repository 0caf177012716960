package dev.simkit.backup;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import java.lang.reflect.Field;
import java.lang.reflect.Modifier;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import org.junit.jupiter.api.Test;

/**
 * Every {@code SW_} constant of {@link Constants} is a row {@code | XXXX | Name | meaning |} of
 * applet-spec/status-words.md with the same code, its name in UPPER_SNAKE case; every credit-module
 * row (9Cxx) has a constant.
 */
class StatusWordsTableTest {

    static final Path TABLE = Path.of(System.getProperty("simkit.statusWords", "../../applet-spec/status-words.md"));
    static final Pattern ROW = Pattern.compile("^\\|\\s*([0-9A-F]{4})\\s*\\|\\s*([A-Za-z0-9]+)\\s*\\|.*\\|\\s*$");

    static Map<Integer, String> rows() throws Exception {
        Map<Integer, String> rows = new LinkedHashMap<>();
        for (String line : Files.readAllLines(TABLE)) {
            Matcher m = ROW.matcher(line.trim());
            if (m.matches()) {
                String prev = rows.put(Integer.parseInt(m.group(1), 16), m.group(2));
                assertEquals(null, prev, "one row per code: " + m.group(1));
            }
        }
        assertTrue(rows.size() >= 20, "parsed the table rows of " + TABLE);
        return rows;
    }

    static String snake(String camel) {
        // A word starts at a capital after a lower-case letter: IncorrectP1P2 → INCORRECT_P1P2.
        return camel.replaceAll("([a-z])([A-Z])", "$1_$2").toUpperCase();
    }

    static Map<String, Integer> constants() throws Exception {
        Map<String, Integer> c = new LinkedHashMap<>();
        for (Field f : Constants.class.getDeclaredFields()) {
            if (f.getName().startsWith("SW_") && Modifier.isStatic(f.getModifiers()) && f.getType() == short.class) {
                f.setAccessible(true);
                c.put(f.getName().substring(3), f.getShort(null) & 0xFFFF);
            }
        }
        return c;
    }

    @Test
    void everyConstantIsARow() throws Exception {
        Map<Integer, String> rows = rows();
        for (Map.Entry<String, Integer> e : constants().entrySet()) {
            String row = rows.get(e.getValue());
            if (row == null) {
                fail(String.format("SW_%s = %04X is not a row of %s", e.getKey(), e.getValue(), TABLE));
            }
            assertEquals(snake(row), e.getKey(), String.format("name of %04X", e.getValue()));
        }
    }

    @Test
    void everyBackupStoreRowIsAConstant() throws Exception {
        Map<String, Integer> constants = constants();
        for (Map.Entry<Integer, String> row : rows().entrySet()) {
            if ((row.getKey() & 0xFF00) == 0x9D00) {
                assertEquals(row.getKey(), constants.get(snake(row.getValue())),
                        String.format("row %04X %s has a constant", row.getKey(), row.getValue()));
            }
        }
    }
}

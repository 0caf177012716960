package dev.simkit.testkit;

import java.io.IOException;
import java.lang.reflect.Field;
import java.lang.reflect.Modifier;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * The machine-read table of applet-spec/status-words.md ({@code | XXXX | Name | meaning |} rows)
 * against an applet's {@code SW_} constants: the same codes, the name in UPPER_SNAKE case.
 * Shared by the applet modules' tests (the Rust side checks the same table against its enum).
 */
public final class StatusWordsTable {

    private static final Pattern ROW =
            Pattern.compile("^\\|\\s*([0-9A-F]{4})\\s*\\|\\s*([A-Za-z0-9]+)\\s*\\|.*\\|\\s*$");

    private StatusWordsTable() {}

    /** The table's rows, code → name; a code listed twice is an error. */
    public static Map<Integer, String> rows(Path table) throws IOException {
        Map<Integer, String> rows = new LinkedHashMap<>();
        for (String line : Files.readAllLines(table)) {
            Matcher m = ROW.matcher(line.trim());
            if (m.matches() && rows.put(Integer.parseInt(m.group(1), 16), m.group(2)) != null) {
                throw new IllegalStateException("status word " + m.group(1) + " listed twice in " + table);
            }
        }
        return rows;
    }

    /** {@code IncorrectP1P2} → {@code INCORRECT_P1P2}: a word starts at a capital after a lower-case letter. */
    public static String snake(String camel) {
        return camel.replaceAll("([a-z])([A-Z])", "$1_$2").toUpperCase();
    }

    /** The {@code static short SW_*} fields of {@code constants}, name (without SW_) → code. */
    public static Map<String, Integer> constants(Class<?> constants) throws IllegalAccessException {
        Map<String, Integer> c = new LinkedHashMap<>();
        for (Field f : constants.getDeclaredFields()) {
            if (f.getName().startsWith("SW_") && Modifier.isStatic(f.getModifiers()) && f.getType() == short.class) {
                f.setAccessible(true);
                c.put(f.getName().substring(3), f.getShort(null) & 0xFFFF);
            }
        }
        return c;
    }

    /**
     * Every disagreement between the table and {@code constants}: a constant that is not a row or
     * has another name, and a row of the applet's own range ({@code rangeHigh}, e.g. {@code 0x9C}
     * for 9Cxx) without a constant. Empty means they agree.
     */
    public static List<String> mismatches(Path table, Class<?> constants, int rangeHigh)
            throws IOException, IllegalAccessException {
        Map<Integer, String> rows = rows(table);
        Map<String, Integer> consts = constants(constants);
        List<String> problems = new ArrayList<>();
        if (rows.size() < 20) {
            problems.add("only " + rows.size() + " rows parsed from " + table + ": has its format changed?");
        }
        for (Map.Entry<String, Integer> e : consts.entrySet()) {
            String row = rows.get(e.getValue());
            if (row == null) {
                problems.add(String.format("SW_%s = %04X is not a row of %s", e.getKey(), e.getValue(), table));
            } else if (!snake(row).equals(e.getKey())) {
                problems.add(String.format("SW_%s = %04X is named %s in the table", e.getKey(), e.getValue(), row));
            }
        }
        for (Map.Entry<Integer, String> row : rows.entrySet()) {
            if (row.getKey() >> 8 == rangeHigh && !row.getKey().equals(consts.get(snake(row.getValue())))) {
                problems.add(String.format("row %04X %s has no constant", row.getKey(), row.getValue()));
            }
        }
        return problems;
    }
}

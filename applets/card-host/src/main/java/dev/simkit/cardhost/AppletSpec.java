package dev.simkit.cardhost;

import java.util.ArrayList;
import java.util.List;

/**
 * One applet to install: AID, applet class, application-specific install parameters.
 *
 * <p>Command-line form ({@code --card}): {@code aid=HEX,class=NAME[,params=HEX]}, several
 * applets of one card separated by {@code ;}.
 */
public record AppletSpec(byte[] aid, String className, byte[] params) {
    public AppletSpec {
        if (aid.length < 5 || aid.length > 16) {
            throw new IllegalArgumentException("AID must be 5..16 bytes, got " + aid.length);
        }
        if (className == null || className.isBlank()) {
            throw new IllegalArgumentException("applet class missing");
        }
    }

    /** Parses one {@code --card} value into the card's applets. */
    public static List<AppletSpec> parseCard(String spec) {
        List<AppletSpec> applets = new ArrayList<>();
        for (String part : spec.split(";")) {
            if (!part.isBlank()) {
                applets.add(parseApplet(part.trim()));
            }
        }
        if (applets.isEmpty()) {
            throw new IllegalArgumentException("--card needs at least one applet: " + spec);
        }
        return applets;
    }

    private static AppletSpec parseApplet(String text) {
        byte[] aid = null;
        String cls = null;
        byte[] params = new byte[0];
        for (String kv : text.split(",")) {
            int eq = kv.indexOf('=');
            if (eq < 0) {
                throw new IllegalArgumentException("expected key=value in applet spec: " + kv);
            }
            String key = kv.substring(0, eq).trim();
            String value = kv.substring(eq + 1).trim();
            switch (key) {
                case "aid" -> aid = Hex.parse(value);
                case "class" -> cls = value;
                case "params" -> params = Hex.parse(value);
                default -> throw new IllegalArgumentException("unknown applet spec key '" + key + "'");
            }
        }
        if (aid == null) {
            throw new IllegalArgumentException("applet spec without aid=: " + text);
        }
        return new AppletSpec(aid, cls, params);
    }

    @Override
    public String toString() {
        return "aid=" + Hex.of(aid) + ",class=" + className + (params.length > 0 ? ",params=" + Hex.of(params) : "");
    }
}

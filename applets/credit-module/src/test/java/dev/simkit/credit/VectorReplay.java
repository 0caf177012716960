package dev.simkit.credit;

import dev.simkit.testkit.Hex;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.ArrayList;
import java.util.List;
import java.util.Locale;

import com.fasterxml.jackson.databind.JsonNode;

import org.junit.jupiter.api.DynamicTest;

import javacard.framework.Applet;

/**
 * Replays a credit-module vector file — {@code {"profiles":[{"profile", "master_key", "module_id",
 * "request_key", "grant_key", "request_key_kcv", "grant_key_kcv", "personalisation":[{"command",
 * "response"}], "exchanges":[{"name", "command", "response"}]}]}} — on a freshly installed applet
 * per profile, comparing every full response (data ‖ SW) byte for byte. Keys and KCVs, when
 * present, are checked against the Java reference KDF too.
 */
final class VectorReplay {

    private VectorReplay() {
    }

    static List<DynamicTest> tests(JsonNode root, String source) {
        JsonNode profiles = root.get("profiles");
        assertTrue(profiles != null && profiles.isArray() && profiles.size() > 0,
                source + ": expected a non-empty \"profiles\" array");
        List<DynamicTest> out = new ArrayList<>();
        for (JsonNode prof : profiles) {
            String name = text(prof, "profile");
            out.add(DynamicTest.dynamicTest(name + " keys", () -> checkKeys(prof)));
            out.add(DynamicTest.dynamicTest(name + " exchanges (native CMAC)",
                    () -> replay(prof, CreditModule.class)));
            out.add(DynamicTest.dynamicTest(name + " exchanges (AES-ECB CMAC)",
                    () -> replay(prof, CreditModuleCmacFallback.class)));
        }
        return out;
    }

    static String text(JsonNode n, String field) {
        JsonNode v = n.get(field);
        assertTrue(v != null && v.isTextual(), "missing string field \"" + field + "\"");
        return v.asText();
    }

    static void checkKeys(JsonNode prof) {
        Host.Profile p = Host.Profile.byName(text(prof, "profile"));
        if (!prof.has("master_key")) {
            return;
        }
        byte[][] k = Host.deriveKeys(p, Hex.b(text(prof, "master_key")), Hex.b(text(prof, "module_id")));
        assertEquals(norm(text(prof, "request_key")), Hex.s(k[0]), "K_req");
        assertEquals(norm(text(prof, "grant_key")), Hex.s(k[1]), "K_grant");
        if (prof.has("request_key_kcv")) {
            assertEquals(norm(text(prof, "request_key_kcv")), Hex.s(Host.kcv(p, k[0])), "K_req KCV");
            assertEquals(norm(text(prof, "grant_key_kcv")), Hex.s(Host.kcv(p, k[1])), "K_grant KCV");
        }
    }

    static void replay(JsonNode prof, Class<? extends Applet> applet) {
        Card card = new Card(applet);
        int i = 0;
        for (String list : new String[] {"personalisation", "exchanges"}) {
            JsonNode steps = prof.get(list);
            assertTrue(steps != null && steps.isArray(), "missing array \"" + list + "\"");
            for (JsonNode step : steps) {
                String label = list + "[" + i++ + "]" + (step.has("name") ? " " + step.get("name").asText() : "");
                byte[] cmd = Hex.b(text(step, "command"));
                String got = Hex.s(card.send(cmd));
                assertEquals(norm(text(step, "response")), got, () -> label + ": " + Hex.s(cmd));
            }
        }
    }

    static String norm(String hex) {
        return hex.replaceAll("\\s", "").toUpperCase(Locale.ROOT);
    }
}

package dev.simkit.credit;

import dev.simkit.testkit.Hex;

import java.nio.file.Path;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;

/**
 * A vector file in the shared format whose expected responses come from the Java host reference
 * ({@link Host}) and a hand-kept model of the module state — never from running the applet. Used
 * by {@link LocalVectorsTest}, and as a development stand-in for the Rust-generated file:
 * {@code java ... dev.simkit.credit.LocalVectors OUT.json}. Not committed under applet-spec/.
 */
final class LocalVectors {

    private LocalVectors() {
    }

    public static void main(String[] args) throws Exception {
        new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT).writeValue(Path.of(args[0]).toFile(), generate());
    }

    static final long M = 1;
    static final long MAX = 10_000;
    static final int U = 50_000;
    static final int L = 500;
    static final int THRESHOLD = 5;

    static ObjectNode generate() {
        ObjectMapper om = new ObjectMapper();
        ObjectNode root = om.createObjectNode();
        ArrayNode profiles = root.putArray("profiles");
        for (Host.Profile p : Host.Profile.values()) {
            profiles.add(profile(om, p));
        }
        return root;
    }

    static byte[] status(Host.Profile p, byte[] id, int b, long n, long[] lim, long seq, int flags, long pendR,
            int bad, int window) {
        return Hex.cat(new byte[] {2, (byte) p.id}, id, Hex.u32(b), Hex.u32(n), Hex.u32(lim[0]), Hex.u32(lim[1]),
                Hex.u32(lim[2]), Hex.u32(lim[3]), Hex.u32(seq), new byte[] {(byte) flags}, Hex.u32(pendR),
                Hex.u16(bad), Hex.u16(window), Hex.u16(THRESHOLD));
    }

    static ObjectNode profile(ObjectMapper om, Host.Profile p) {
        byte[] master = Module.master(p);
        byte[] id = Module.ID;
        byte[][] k = Host.deriveKeys(p, master, id);
        byte[] kReq = k[0];
        byte[] kGrant = k[1];
        ObjectNode o = om.createObjectNode();
        o.put("profile", p.name);
        o.put("master_key", Hex.s(master));
        o.put("module_id", Hex.s(id));
        o.put("request_key", Hex.s(kReq));
        o.put("grant_key", Hex.s(kGrant));
        o.put("request_key_kcv", Hex.s(Host.kcv(p, kReq)));
        o.put("grant_key_kcv", Hex.s(Host.kcv(p, kGrant)));

        Module shape = new Module(p, id, null);
        Module.Setup s = new Module.Setup();
        ArrayNode perso = o.putArray("personalisation");
        step(perso, null, Card.personalise(shape.personalisation(s)), "9000");
        step(perso, null, Card.lock(), "9000");

        long[] lim = {M, MAX, U, L};
        ArrayNode ex = o.putArray("exchanges");
        step(ex, "status", Card.getStatus(), Hex.s(status(p, id, 0, 0, lim, 0, 0, 0, 0, 0)) + "9000");
        byte[] req = Host.request(p, id, kReq, 0, 1000, 0);
        step(ex, "initiate reload 1000", Card.initiate(1000), Hex.s(req) + "9000");
        step(ex, "initiate reload again", Card.initiate(1000), Hex.s(req) + "9000");
        byte[] grant = Host.grant(p, id, kGrant, 1, 0, 0, 1000, Host.tagOf(req));
        byte[] ack = Host.completion(p, id, kReq, 1, 0, 1000, 1000, Host.tagOf(grant));
        step(ex, "apply grant", Card.applyGrant(grant), Hex.s(ack) + "9000");
        step(ex, "apply grant again", Card.applyGrant(grant), "9C04");
        step(ex, "last completion", Card.getLastCompletion(), Hex.s(ack) + "9000");

        byte[] req2 = Host.request(p, id, kReq, 1, 2000, 1000);
        step(ex, "initiate reload 2000", Card.initiate(2000), Hex.s(req2) + "9000");
        step(ex, "provisional ack", Card.applyProvisional(Host.provisional(p, id, kGrant, 2, Host.tagOf(req2))), "9000");
        step(ex, "debit 1400", Card.debit(1400), Hex.s(Hex.u32(-400)) + "9000");
        step(ex, "debit below -L", Card.debit(101), "9C07");
        byte[] decline = Host.grant(p, id, kGrant, 2, 1, 3, 0, Host.tagOf(req2));
        byte[] ack2 = Host.completion(p, id, kReq, 2, 1, 0, -400, Host.tagOf(decline));
        step(ex, "declined grant", Card.applyGrant(decline), Hex.s(ack2) + "9000");
        step(ex, "limit update", Card.applyLimitUpdate(Host.limitUpdate(p, id, kGrant, 1, 10, 5000, 20000, 100)), "9000");
        step(ex, "limit update replayed", Card.applyLimitUpdate(Host.limitUpdate(p, id, kGrant, 1, 10, 5000, 20000, 100)),
                "9C09");
        byte[] forged = Host.grant(p, id, kGrant, 3, 0, 0, 10, Host.tagOf(req2));
        forged[36] ^= 1;
        step(ex, "forged grant", Card.applyGrant(forged), "6982");
        step(ex, "status after", Card.getStatus(),
                Hex.s(status(p, id, -400, 2, new long[] {10, 5000, 20000, 100}, 1, 0x04, 0, 1, 1)) + "9000");
        step(ex, "fraud log", Card.getFraudLog(), "02" + "01" + "00000002" + "00000003" + "03" + "00000002"
                + "00000001" + "9000");
        return o;
    }

    static void step(ArrayNode list, String name, byte[] command, String response) {
        ObjectNode n = list.addObject();
        if (name != null) {
            n.put("name", name);
        }
        n.put("command", Hex.s(command));
        n.put("response", response);
    }
}

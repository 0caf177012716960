package dev.simkit.cardhost.testapplets;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import java.util.Arrays;

import com.licel.jcardsim.smartcardio.CardSimulator;
import com.licel.jcardsim.utils.AIDUtil;

import javacard.framework.AID;

import org.junit.jupiter.api.Test;

/** The baseline applet keeps what it is sent, over short and extended APDUs. */
class StoreSinkAppletTest {

    static byte[] extended(int ins, byte[] data, int le) {
        byte[] a = new byte[7 + data.length + (le >= 0 ? 2 : 0)];
        a[0] = (byte) 0x80;
        a[1] = (byte) ins;
        a[5] = (byte) (data.length >> 8);
        a[6] = (byte) data.length;
        System.arraycopy(data, 0, a, 7, data.length);
        if (le >= 0) {
            a[7 + data.length] = (byte) (le >> 8);
            a[8 + data.length] = (byte) le;
        }
        return a;
    }

    @Test
    void storesShortAndExtendedCommandsAndReadsThemBack() {
        CardSimulator sim = new CardSimulator();
        AID aid = AIDUtil.create("F000000001");
        byte[] install = {5, (byte) 0xF0, 0, 0, 0, 1, 0, 0};
        sim.installApplet(aid, StoreSinkApplet.class, install, (short) 0, (byte) install.length);
        sim.selectApplet(aid);
        byte[] r = sim.transmitCommand(new byte[] {(byte) 0x80, 0x02, 0, 0, 3, 7, 8, 9});
        assertArrayEquals(new byte[] {(byte) 0x90, 0}, r);
        r = sim.transmitCommand(new byte[] {(byte) 0x80, 0x04, 0, 0, 3});
        assertArrayEquals(new byte[] {7, 8, 9, (byte) 0x90, 0}, r);

        byte[] big = new byte[StoreSinkApplet.CAPACITY];
        for (int i = 0; i < big.length; i++) {
            big[i] = (byte) (i * 7 + 1);
        }
        r = sim.transmitCommand(extended(0x02, big, -1));
        assertArrayEquals(new byte[] {(byte) 0x90, 0}, r);
        r = sim.transmitCommand(extended(0x04, new byte[0], 0x7FFF));
        assertEquals(big.length + 2, r.length);
        assertArrayEquals(big, Arrays.copyOf(r, big.length));
        r = sim.transmitCommand(new byte[] {(byte) 0x80, 0x06, 0, 0});
        assertArrayEquals(new byte[] {0x6D, 0}, r);
    }
}

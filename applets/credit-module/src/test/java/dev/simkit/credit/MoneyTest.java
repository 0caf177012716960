package dev.simkit.credit;

import dev.simkit.testkit.Hex;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.util.ArrayList;
import java.util.List;
import java.util.Random;

import org.junit.jupiter.api.Test;

/** {@link Arith} and {@link Money} against Java {@code long} arithmetic on edge and random values. */
class MoneyTest {

    static final long[] U32_EDGES = {0, 1, 2, 0x7FFFFFFEL, 0x7FFFFFFFL, 0x80000000L, 0x80000001L, 0xFFFFFFFEL, 0xFFFFFFFFL};
    static final int[] I32_EDGES = {Integer.MIN_VALUE, Integer.MIN_VALUE + 1, -500, -1, 0, 1, 500, Integer.MAX_VALUE - 1,
        Integer.MAX_VALUE};

    static List<Long> u32s() {
        List<Long> v = new ArrayList<>();
        for (long x : U32_EDGES) {
            v.add(x);
        }
        Random r = new Random(1);
        for (int i = 0; i < 12; i++) {
            v.add(r.nextInt() & 0xFFFFFFFFL);
        }
        return v;
    }

    static List<Integer> i32s() {
        List<Integer> v = new ArrayList<>();
        for (int x : I32_EDGES) {
            v.add(x);
        }
        Random r = new Random(2);
        for (int i = 0; i < 12; i++) {
            v.add(r.nextInt());
        }
        return v;
    }

    final byte[] w = new byte[Transients.LEN];

    @Test
    void fitsUnderUpper() {
        for (int b : i32s()) {
            for (long a : u32s()) {
                for (int u : i32s()) {
                    boolean expect = (long) b + a <= u;
                    assertEquals(expect, Money.fitsUnderUpper(Hex.u32(b), (short) 0, Hex.u32(a), (short) 0,
                            Hex.u32(u), (short) 0, w), b + " + " + a + " <= " + u);
                }
            }
        }
    }

    @Test
    void addAndDebit() {
        for (int b : i32s()) {
            for (long a : u32s()) {
                byte[] out = new byte[4];
                Money.add(Hex.u32(b), (short) 0, Hex.u32(a), (short) 0, out, (short) 0, w);
                assertEquals((int) (b + a), Hex.i32(out, 0));
                for (int l : new int[] {0, 1, 500, Integer.MAX_VALUE}) {
                    for (boolean line : new boolean[] {false, true}) {
                        long floor = line ? -(long) l : 0;
                        boolean expect = (long) b - a >= floor;
                        boolean got = Money.debit(Hex.u32(b), (short) 0, Hex.u32(a), (short) 0, Hex.u32(l), (short) 0,
                                line, out, (short) 0, w);
                        assertEquals(expect, got, b + " - " + a + " >= " + floor);
                        if (got) {
                            assertEquals(b - a, (long) Hex.i32(out, 0));
                        }
                    }
                }
            }
        }
    }

    @Test
    void limitsAndBalance() {
        for (long m : U32_EDGES) {
            for (long max : U32_EDGES) {
                for (int u : I32_EDGES) {
                    for (int l : I32_EDGES) {
                        byte[] lim = Hex.cat(Hex.u32(m), Hex.u32(max), Hex.u32(u), Hex.u32(l));
                        boolean expect = 1 <= m && m <= max && max <= 0x7FFFFFFFL && u >= 0 && l >= 0;
                        assertEquals(expect, Money.limitsValid(lim, (short) 0));
                        if (expect) {
                            for (int b : I32_EDGES) {
                                assertEquals(-(long) l <= b && b <= u,
                                        Money.balanceWithin(Hex.u32(b), (short) 0, lim, (short) 0, w));
                            }
                        }
                    }
                }
            }
        }
    }

    @Test
    void arithPrimitives() {
        for (long a : u32s()) {
            for (long b : u32s()) {
                assertEquals(Long.signum(Long.compare(a, b)),
                        Arith.compareUnsigned(Hex.u32(a), (short) 0, Hex.u32(b), (short) 0, (short) 4));
            }
            byte[] r = new byte[5];
            Arith.widen(Hex.u32(a), (short) 0, false, r, (short) 0);
            Arith.increment(r, (short) 0);
            assertEquals(a + 1, ((r[0] & 0xFFL) << 32) | Hex.u32(r, 1));
            assertEquals(a == 0xFFFFFFFFL, Arith.isAllOnes(Hex.u32(a), (short) 0, (short) 4));
            assertEquals(a == 0, Arith.isZero(Hex.u32(a), (short) 0, (short) 4));
        }
        for (int a : i32s()) {
            for (int b : i32s()) {
                byte[] x = new byte[5];
                byte[] y = new byte[5];
                Arith.widen(Hex.u32(a), (short) 0, true, x, (short) 0);
                Arith.widen(Hex.u32(b), (short) 0, true, y, (short) 0);
                assertEquals(Integer.signum(Integer.compare(a, b)), Arith.compare(x, (short) 0, y, (short) 0));
            }
        }
        for (int a = 0; a <= 0xFFFF; a += 0x1111) {
            for (int b = 0; b <= 0xFFFF; b += 0x0FFF) {
                assertEquals(a < b, Arith.lessThanU16((short) a, (short) b));
            }
        }
    }
}

package dev.simkit.cardhost.testapplets.helper;

/** Helper class in a package of its own, used by SinkApplet: tests --applet-package. */
public class Cell {
    private short value;

    public void set(short v) {
        value = v;
    }

    public short get() {
        return value;
    }
}

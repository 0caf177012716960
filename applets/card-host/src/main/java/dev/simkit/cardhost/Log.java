package dev.simkit.cardhost;

import java.io.PrintStream;

/**
 * Logging to stderr. Never stdout: jCardSim itself prints to stdout, so stdout is useless as a
 * channel, and a parent process should be able to ignore it entirely.
 */
public final class Log {
    private static volatile boolean quiet;
    private static final PrintStream ERR = System.err;

    private Log() {
    }

    public static void setQuiet(boolean q) {
        quiet = q;
    }

    public static void info(String fmt, Object... args) {
        if (!quiet) {
            ERR.println("simkit-card-host: " + String.format(fmt, args));
        }
    }

    /** Warnings are printed even with --quiet: they mean something is wrong. */
    public static void warn(String fmt, Object... args) {
        ERR.println("simkit-card-host: warning: " + String.format(fmt, args));
    }
}

package dev.simkit.credit;

/** The applet with the AES-ECB CMAC construction forced, for tests on a card that has native CMAC. */
public class CreditModuleCmacFallback extends CreditModule {

    protected CreditModuleCmacFallback() {
        super(false);
    }

    public static void install(byte[] bArray, short bOffset, byte bLength) {
        new CreditModuleCmacFallback().register();
    }
}

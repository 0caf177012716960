package dev.simkit.cardhost;

import dev.simkit.cardhost.runtime.DigestFactory;
import java.net.URL;
import java.util.ArrayList;
import java.util.List;

/** The set of cards this process serves, addressed by index (0..255). */
public final class CardHost {
    /** Test applets installed when no --card is given. */
    public static final List<AppletSpec> DEFAULT_CARD = List.of(
            new AppletSpec(Hex.parse("F0534D4B4954E1"), "dev.simkit.cardhost.testapplets.EchoApplet", new byte[0]),
            new AppletSpec(Hex.parse("F0534D4B4954E2"), "dev.simkit.cardhost.testapplets.CounterApplet", new byte[0]));

    private final List<Card> cards;

    public CardHost(List<Card> cards) {
        if (cards.size() > 256) {
            throw new IllegalArgumentException("at most 256 cards (the protocol's card index is one byte)");
        }
        this.cards = List.copyOf(cards);
    }

    /**
     * Creates {@code copies} × {@code cardSpecs.size()} cards: the list of card layouts repeated
     * {@code copies} times, each card with its applets installed.
     */
    public static CardHost create(List<List<AppletSpec>> cardSpecs, int copies, boolean rollback, URL[] appletJars) {
        return create(cardSpecs, copies, rollback, appletJars, List.of());
    }

    public static CardHost create(List<List<AppletSpec>> cardSpecs, int copies, boolean rollback, URL[] appletJars,
            List<String> extraAppletPackages) {
        return create(cardSpecs, copies, rollback, appletJars, extraAppletPackages, DigestFactory.enabledByDefault());
    }

    /** As above; {@code fastDigest} is the cards' digest switch (see {@link Card#fastDigest()}). */
    public static CardHost create(List<List<AppletSpec>> cardSpecs, int copies, boolean rollback, URL[] appletJars,
            List<String> extraAppletPackages, boolean fastDigest) {
        List<Card> cards = new ArrayList<>();
        ClassLoader parent = CardHost.class.getClassLoader();
        for (int copy = 0; copy < copies; copy++) {
            for (List<AppletSpec> applets : cardSpecs) {
                Card card = new Card(cards.size(), rollback, appletJars, parent, extraAppletPackages, fastDigest);
                for (AppletSpec a : applets) {
                    card.install(a);
                }
                cards.add(card);
            }
        }
        return new CardHost(cards);
    }

    /** The card at {@code index}, or null. */
    public Card card(int index) {
        return index >= 0 && index < cards.size() ? cards.get(index) : null;
    }

    public int size() {
        return cards.size();
    }

    /**
     * LIST_CARDS text: one line per card,
     * {@code <index> <power:on|off> <rollback:on|off> [<AIDHEX>=<class> ...]\n}.
     */
    public String describe() {
        StringBuilder sb = new StringBuilder();
        for (Card c : cards) {
            sb.append(c.index())
                    .append(c.powered() ? " on" : " off")
                    .append(c.rollbackEnabled() ? " on" : " off");
            for (Card.Installed a : c.applets()) {
                sb.append(' ').append(Hex.of(a.aid())).append('=').append(a.className());
            }
            sb.append('\n');
        }
        return sb.toString();
    }
}

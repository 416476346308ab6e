"""Support-ticket texts for the demo campaign, written by code from a seed.

A ticket is a sentence pattern for its intent with its slots filled from the
vocabularies below, wrapped in an optional greeting and sign-off, sometimes
with a typo. ``[a|b|]`` in a pattern picks one alternative (an empty one drops
the words), ``{slot}`` draws from ``SLOTS``. Mixed tickets mention two intents
without saying which matters most; their gold is the primary one the caller chose.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

import numpy as np

DEMO_CLASSES = ("billing", "technical", "shipping", "account")

MIN_WORDS, MAX_WORDS = 6, 30
OPENER_RATE, CLOSER_RATE = 0.45, 0.5
TYPO_RATE, LOWERCASE_RATE, NO_PERIOD_RATE = 0.08, 0.12, 0.1

OPENERS = (
    "Hi,", "Hello,", "Hi there,", "Hello team,", "Hey,", "Good morning,", "Good afternoon,",
    "Hi support,", "Dear support team,", "Quick question:", "Urgent:", "Sorry to bother you, but",
    "Hoping you can help.", "Hi again,", "Not sure who to ask, but", "Help please!", "Hey folks,",
    "Second time writing about this.", "Evening,", "Greetings,",
)
CLOSERS = (
    "Thanks.", "Thank you!", "Please help.", "Thanks in advance.", "Any update appreciated.",
    "Please advise.", "Cheers.", "Appreciate it.", "This is really frustrating.",
    "Let me know asap.", "Regards, {name}", "Thanks, {name}", "Hope to hear back soon.",
    "Please reply by email.", "Ticket ref {ref}.", "Much appreciated!",
    # Context customers add whatever the issue: words of other intents, on purpose.
    "Sent from my {device}.", "I'm on the {plan} plan.", "This is about {order}.",
    "Using {browser} on a {device}.", "I signed up with my {email_kind}.",
    "I have been a customer for years.", "Payment method is {card}, if that matters.",
    "Customer since {month}.", "Last delivery was fine by the way.", "The app is on version {version}.",
)


def _amount(rng: np.random.Generator) -> str:
    value = _pick(rng, ("4.99", "9.99", "12.50", "14.99", "19.99", "29", "39.99", "49", "59.99",
                        "89", "99", "120", "249", "310"))
    return _pick(rng, ("${}", "€{}", "£{}", "{} USD", "{} dollars")).format(value)


def _order(rng: np.random.Generator) -> str:
    return _pick(rng, ("order #{}", "order {}", "my order ({})", "order no. {}")).format(
        int(rng.integers(10_000, 999_999))
    )


def _date(rng: np.random.Generator) -> str:
    month = _pick(rng, ("January", "March", "April", "June", "August", "October", "December"))
    return _pick(rng, (
        "yesterday", "last Monday", "on Friday", "this morning", "two days ago", "last week",
        "on {m} {d}", "on the {d}th", "over the weekend", "earlier today", "on {m} {d}th",
    )).format(m=month, d=int(rng.integers(2, 29)))


SLOTS: dict[str, Sequence[str] | Callable[[np.random.Generator], str]] = {
    "amount": _amount,
    "order": _order,
    "date": _date,
    "ref": lambda rng: f"#{int(rng.integers(1000, 99_999))}",
    "version": lambda rng: f"{int(rng.integers(2, 9))}.{int(rng.integers(0, 20))}",
    "n": lambda rng: str(int(rng.integers(2, 5))),
    "name": ("Maria", "Tom", "Priya", "Jonas", "Aiko", "Sam", "Fatima", "Luis", "Chen", "Olga"),
    "plan": ("Basic", "Plus", "Pro", "Premium", "Family", "Business", "Student", "Team", "Starter"),
    "card": ("Visa", "Mastercard", "Amex", "PayPal", "debit card", "Apple Pay", "credit card",
             "Google Pay", "bank account"),
    "month": ("January", "February", "March", "May", "July", "September", "November"),
    "promo": ("SPRING20", "WELCOME10", "BLACKFRIDAY", "SAVE15", "FRIENDS25", "NEWYEAR"),
    "days": ("two weeks", "10 days", "over a week", "five days", "a month", "three weeks"),
    "device": ("iPhone", "Android phone", "iPad", "Pixel 7", "Galaxy S22", "MacBook", "Windows laptop",
               "Chromebook", "work PC", "Samsung tablet", "smart TV", "Linux desktop"),
    "browser": ("Chrome", "Firefox", "Safari", "Edge", "the mobile browser", "Brave"),
    "feature": ("dashboard", "settings page", "search", "calendar view", "reports tab", "photo upload",
                "chat window", "export", "offline mode", "notifications panel", "checkout page",
                "shared folders", "video player", "import tool"),
    "action": ("log in", "save a draft", "upload a photo", "open a report", "export my data",
               "connect my calendar", "sync my files", "share a folder", "print an invoice",
               "load the dashboard", "play a video"),
    "error": ('error 500', 'error 503', '"Something went wrong"', 'error code E-1042',
              '"Session expired"', 'a blank white screen', '"Unable to connect to server"',
              '"Invalid token"', 'a timeout error', 'error 0x80070005', '"Network request failed"',
              '"Unexpected error, try again later"', 'a 404 page'),
    "integration": ("Slack", "Google Drive", "Outlook", "Dropbox", "Zapier", "Salesforce", "Shopify"),
    "format": ("PDF", "CSV", "Excel", "JSON"),
    "item": ("blender", "pair of headphones", "pair of running shoes", "desk lamp", "phone case", "coffee maker",
             "backpack", "smartwatch", "keyboard", "winter jacket", "yoga mat", "office chair",
             "water bottle", "camera bag", "air fryer", "duvet cover", "monitor stand", "pair of sneakers"),
    "gadget": ("smartwatch", "tablet", "e-reader", "Bluetooth speaker", "fitness tracker", "phone",
               "baby monitor"),
    "carrier": ("UPS", "FedEx", "DHL", "USPS", "Royal Mail", "DPD", "Canada Post", "the courier",
                "Hermes", "GLS"),
    "city": ("Chicago", "Leeds", "Toronto", "Lyon", "Austin", "Melbourne", "Dublin", "Hamburg",
             "Denver", "Manchester", "Rotterdam", "Seattle", "Madrid", "Osaka"),
    "country": ("Canada", "Norway", "Brazil", "Japan", "Ireland", "Mexico", "Poland", "New Zealand"),
    "email_kind": ("work email", "Gmail address", "new email", "personal address", "Outlook email",
                   "university email"),
}

PATTERNS: dict[str, tuple[str, ...]] = {
    "billing": (
        "I was [charged|billed] twice for my {plan} subscription {date}.",
        "Why is there a {amount} charge on my {card} statement?",
        "Please refund the {amount} [you took|taken] {date}, I cancelled before the renewal.",
        "My invoice for {month} shows the wrong amount, it should be {amount}.",
        "[How do I|Can I|Is it possible to] switch from monthly to [annual|yearly] billing on the {plan} plan?",
        "The promo code {promo} [did not apply|was not applied] and I paid full price.",
        "Can I get [a receipt|an invoice] with our company VAT number for {order}?",
        "You [billed|charged] me {amount} after the free trial even though I cancelled it.",
        "My {card} keeps getting declined at renewal, [can I pay another way|what are my options]?",
        "Still waiting on the refund for {order}, it has been {days}.",
        "The {plan} plan is listed at {amount} [but I paid more|yet my bill is higher].",
        "Is there a [student|nonprofit|team] discount for the {plan} tier?",
        "What is the {amount} [service fee|extra fee|surcharge] on my latest bill?",
        "I'd like to downgrade to {plan} and get a prorated refund for this month.",
        "Can I pay for {order} in [installments|two payments]?",
        "[Tax|VAT] was added twice on my [last|latest|{month}] invoice.",
        "Please [stop|cancel] the automatic renewal, I don't want to be charged {amount} again.",
        "[I was|We were] charged in euros instead of dollars, please fix the currency.",
        "The refund went to my old {card} [which is closed|that I no longer use].",
        "Who do I talk to about a disputed {amount} payment?",
        "Where in my account settings [can I find|are] my past invoices?",
        "My order was cancelled but the {amount} payment still shows as pending.",
    ),
    "technical": (
        "The app crashes every time I open the {feature} on my {device}.",
        "I keep getting {error} when I try to {action}.",
        "The {feature} has been [loading forever|spinning for minutes] since the last update.",
        "Sync between my {device} and the web version stopped working {date}.",
        "[Notifications|Push alerts] are not showing up on my {device} [at all|anymore].",
        "The button in the {feature} does nothing when I click it in {browser}.",
        "After updating to version {version} the app won't [start|open] on my {device}.",
        "[Uploading|Attaching] a file fails with {error}.",
        "The site is [extremely|really] slow today, every page takes a minute to load.",
        "Export to {format} [produces an empty file|gives a corrupted file].",
        "The app on my {device} freezes on the [splash|loading] screen.",
        "Search returns no results even for [items|documents] I know exist.",
        "The API returns {error} for every request since {date}.",
        "Dark mode makes the text [unreadable|invisible] in the {feature}.",
        "Videos won't play in {browser}, [just a black screen|only sound].",
        "The {integration} integration stopped syncing {date}.",
        "Is there an outage? I get {error} on every page.",
        "Pages render [broken|half loaded] in {browser} [but work|while they work] on my {device}.",
        "The {feature} shows {error} [after|right after] I {action}.",
        "My changes are not saved, the {feature} reverts [them|everything] after a refresh.",
        "The delivery date field at checkout won't accept any date I pick.",
        "The invoice page in my account is [blank|empty] on my {device}.",
    ),
    "shipping": (
        "My {item} was supposed to arrive {date} and [tracking|the tracking page] hasn't updated.",
        "{carrier} says delivered but there is no [package|parcel] at my door.",
        "Where is {order}? It [shipped|was dispatched] {days} ago.",
        "Can I change the delivery address for {order} to {city}?",
        "The box arrived [crushed|soaked|torn open] and the {item} inside is damaged.",
        "I received the wrong item, I ordered a {item} but got a {item2}.",
        "Do you ship to {country}, and how long does delivery take?",
        "The tracking number for {order} doesn't work on the {carrier} [website|app].",
        "[How do I|Where can I] return the {item}? [I need|Please send me] a return label.",
        "Can I upgrade {order} to [express|next-day] delivery?",
        "Part of my order is missing, only {n} of the items [came|arrived].",
        "My [package|parcel] has been stuck in customs in {city} for {days}.",
        "{carrier} left a note but [I'm never home|I work all day], can I pick it up at a depot?",
        "Is it possible to hold my delivery until I'm back from [vacation|a trip]?",
        "The [courier|driver] delivered my {item} to the wrong address in {city}.",
        "The estimated delivery date keeps moving, [now it says|the latest is] {days} from now.",
        "I need the {item} [before|by] {date2}, can you ship it faster?",
        "My {item} [still shows|is still] 'label created' after {days}.",
        "{carrier} returned my {item} to sender, please [resend it|ship it again].",
        "Can you [combine|merge] my two orders into one shipment to {city}?",
        "I paid for free shipping [and|but] {order} has not left the warehouse in {days}.",
        "My account says {order} shipped {date} but nothing has moved since.",
    ),
    "account": (
        "I can't log in, it says my password is [incorrect|wrong] even after [resetting|changing] it.",
        "[How do I|How can I|Can I] change the email on my account to my {email_kind}?",
        "Please delete my account and [all my personal data|everything you store about me].",
        "My account was locked after too many [login|sign-in] attempts.",
        "I think someone else [accessed|logged into] my account from {city}.",
        "How [can I|do I] turn on two-factor authentication?",
        "I want to change my username, [is that possible|how do I do it]?",
        "I never received the verification email for my new account.",
        "Can you merge my two accounts? One is under my {email_kind}.",
        "[How do I|Can I|How can we] add a [team member|colleague] to our {plan} workspace?",
        "I lost [access to|my] phone number used for two-factor codes.",
        "Please update the name on my profile, I [recently got married|changed my name].",
        "[How do I|Can I|I want to] [unsubscribe|opt out] from your marketing emails?",
        "My account shows as suspended and I don't know why.",
        "Can I transfer ownership of the account to [my colleague|{name}]?",
        "I forgot which email I signed up with, [can you look it up|please help me find it].",
        "[How do I|Where can I] download a copy of [my data|everything in my profile]?",
        "[Remove|Please remove] my old {device} from the list of trusted devices.",
        "The password reset link says it has expired [every time|each time] I click it.",
        "Can I [have|set up] separate logins for my kids under one account?",
        "Order confirmation emails still go to my old address, how do I change that?",
        "My profile shows someone else's name and [payment details|card], is it hacked?",
    ),
}

# Two intents (in DEMO_CLASSES order) -> patterns that name both. The wording does
# not say which one the customer cares about most: that is the primary intent,
# the gold label, chosen by the caller; it is what makes annotators disagree.
MIXED: dict[tuple[str, str], tuple[str, ...]] = {
    ("billing", "technical"): (
        "I want a refund for the {plan} plan because the app keeps crashing on my {device}.",
        "Charged {amount} {date} but the {feature} [never worked|has been broken since].",
        "The checkout page shows {error} when I pay with my {card}, [and|yet] I think it charged me.",
        "The app crashes when I open my invoices, and I need the receipt for {month}.",
    ),
    ("billing", "shipping"): (
        "Please refund the {amount} for {order}, the {item} arrived broken.",
        "I paid {amount} for express shipping but {order} came {days} late.",
        "My {item} never arrived but I was already charged {amount}.",
        "I returned the {item} {days} ago via {carrier} and [still have no|never got a] refund.",
    ),
    ("billing", "account"): (
        "You charged me {amount} {date} even though I closed my account last month.",
        "I deleted my old profile but my {card} is still billed for {plan}.",
        "I can't log in to update my {card} details before the renewal.",
        "Please close my account and stop charging me {amount} a month.",
    ),
    ("technical", "shipping"): (
        "The tracking page shows {error} so I can't see where {order} is.",
        "The {gadget} arrived {date} with a cracked screen and it won't turn on.",
        "The {carrier} tracking link in your app gives {error}, has {order} shipped?",
        "Your order status page won't load in {browser} and my {item} is [late|overdue].",
    ),
    ("technical", "account"): (
        "The login page gives {error} on my {device} whenever I enter my password.",
        "The profile settings page crashes when I try to change my email.",
        "The password reset email never arrives, I checked spam on my {device}.",
        "The two-factor code from the app is always rejected with {error}.",
    ),
    ("shipping", "account"): (
        "My saved address in my profile is old, please send {order} to {city} instead.",
        "{order} went to the address on my old account, can you redirect it to {city}?",
        "How do I change the default address on my account? My last {item} went to {city}.",
        "I can't log in to see my order history and {carrier} tracking.",
    ),
}

_CHOICE = re.compile(r"\[([^\[\]]*)\]")
_SLOT = re.compile(r"{(\w+)}")


def write_ticket(rng: np.random.Generator, intent: str, *, secondary: str | None = None) -> str:
    """One ticket for ``intent``; with ``secondary`` it also mentions that second intent.

    Random draws come only from ``rng``; the text has ``MIN_WORDS`` to ``MAX_WORDS`` words.
    """
    if secondary is None:
        patterns = PATTERNS[intent]
    else:
        patterns = MIXED[tuple(sorted((intent, secondary), key=DEMO_CLASSES.index))]
    while True:
        text = _fill(rng, _pick(rng, patterns))
        if rng.random() < OPENER_RATE:
            opener = _pick(rng, OPENERS)
            # After a greeting ending in a comma or "but" the pattern continues the sentence.
            text = f"{opener} {_decapitalise(text) if opener[-1] in ',t' else text}"
        if rng.random() < CLOSER_RATE:
            text = f"{text} {_fill(rng, _pick(rng, CLOSERS))}"
        if rng.random() < TYPO_RATE:
            text = _typo(rng, text)
        if rng.random() < LOWERCASE_RATE:
            text = text.lower()
        if rng.random() < NO_PERIOD_RATE:
            text = text.rstrip(".")
        if MIN_WORDS <= len(text.split()) <= MAX_WORDS:
            return text


def _fill(rng: np.random.Generator, pattern: str) -> str:
    text = _CHOICE.sub(lambda m: _fill(rng, _pick(rng, m.group(1).split("|"))), pattern)
    drawn: dict[str, str] = {}

    def slot(match: re.Match) -> str:
        name = match.group(1)
        if name not in drawn:
            source = SLOTS[name.rstrip("2")]  # "item2" is a second, independent "item"
            drawn[name] = source(rng) if callable(source) else _pick(rng, source)
        return drawn[name]

    return " ".join(_SLOT.sub(slot, text).split())


def _pick(rng: np.random.Generator, options: Sequence[str]) -> str:
    return options[int(rng.integers(len(options)))]


def _decapitalise(text: str) -> str:
    first = text.split(" ", 1)[0]
    # Keep "I", names and product words such as "UPS" or "iPhone" as they are.
    if first == "I" or first.startswith("I'") or not first[1:].islower():
        return text
    if any(text.startswith(carrier) for carrier in SLOTS["carrier"]):
        return text
    return text[0].lower() + text[1:]


def _typo(rng: np.random.Generator, text: str) -> str:
    words = text.split()
    candidates = [i for i, w in enumerate(words) if len(w) >= 5 and w.isalpha()]
    if not candidates:
        return text
    i = candidates[int(rng.integers(len(candidates)))]
    word = words[i]
    j = int(rng.integers(1, len(word) - 2))
    words[i] = word[:j] + word[j + 1] + word[j] + word[j + 2:]
    return " ".join(words)

"""German: yes/no phrases (negation is checked first), spoken digits, recogniser word lists."""

YES = ("ja", "jawohl", "genau", "richtig", "stimmt", "klar", "gerne", "korrekt", "sicher", "passt", "jep", "okay",
       "ok")
NO = ("nein", "nee", "nö", "falsch", "nicht richtig", "stimmt nicht", "auf keinen fall")
UNITS = {"null": 0, "eins": 1, "ein": 1, "zwei": 2, "zwo": 2, "drei": 3, "vier": 4, "fünf": 5, "funf": 5,
         "sechs": 6, "sieben": 7, "acht": 8, "neun": 9}
TEENS = {"zehn": 10, "elf": 11, "zwölf": 12}
TENS: dict[str, int] = {}
REPEAT = {"doppel": 2, "doppelt": 2, "dreifach": 3}
HUNDRED = ("hundert",)
YES_NO_WORDS = ("ja", "genau", "richtig", "stimmt", "nein", "falsch", "mitarbeiter")
DIGIT_WORDS = ("null", "eins", "zwei", "zwo", "drei", "vier", "fünf", "sechs", "sieben", "acht", "neun", "doppel")
YES_NO_HINTS = ("ja", "nein")

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
# Asking for a person, as regular expressions over lower-cased words (inflections included).
AGENT = (r"mensch\w*", r"jemand\w*", r"mitarbeiter\w*", r"\w*berater\w*", r"person(en)?", r"kundendienst\w*",
         r"kundenservice", r"service-?mitarbeiter\w*", r"agent\w*", r"operator\w*", r"vermittlung")
ORDINALS = {"erste": 0, "ersten": 0, "erstes": 0, "erster": 0, "zweite": 1, "zweiten": 1, "zweites": 1,
            "zweiter": 1, "andere": 1, "anderen": 1, "letzte": 1, "letzten": 1}
DIGIT_HOMOPHONES: dict[str, int] = {}
DAYS = ("Montag", "Dienstag", "Mittwoch", "Donnerstag", "Freitag", "Samstag", "Sonntag")
# Words that join two requests in one sentence ("mein Kontostand, und außerdem geht das Internet nicht").
ALSO = (r"und außerdem", r"und ausserdem", r"außerdem", r"ausserdem", r"und dann", r"und auch", r"sowie",
        r"zusätzlich", r"und")

"""English: yes/no phrases (negation is checked first), spoken digits, recogniser word lists."""

YES = ("yes", "yeah", "yep", "yup", "ya", "sure", "correct", "right", "that's right", "that is right", "absolutely",
       "of course", "okay", "ok", "uh huh", "affirmative", "definitely", "exactly", "please do", "i do", "it is")
NO = ("no", "nope", "nah", "not really", "negative", "wrong", "that's wrong", "incorrect", "no thanks", "not at all",
      "not right", "that's not", "that is not", "isn't")
UNITS = {"zero": 0, "oh": 0, "o": 0, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7,
         "eight": 8, "nine": 9}
TEENS = {"ten": 10, "eleven": 11, "twelve": 12, "thirteen": 13, "fourteen": 14, "fifteen": 15, "sixteen": 16,
         "seventeen": 17, "eighteen": 18, "nineteen": 19}
TENS = {"twenty": 2, "thirty": 3, "forty": 4, "fifty": 5, "sixty": 6, "seventy": 7, "eighty": 8, "ninety": 9}
REPEAT = {"double": 2, "triple": 3}
HUNDRED = ("hundred",)
YES_NO_WORDS = ("yes", "yeah", "yep", "sure", "correct", "right", "no", "nope", "wrong", "agent", "operator")
DIGIT_WORDS = ("zero", "oh", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "double",
               "triple")
YES_NO_HINTS = ("yes", "no")
# Asking for a person, as regular expressions over lower-cased words (inflections included).
AGENT = (r"agents?", r"operators?", r"representatives?", r"reps?", r"humans?", r"human being", r"persons?",
         r"people", r"someone", r"somebody", r"anyone", r"anybody", r"staff", r"customer service", r"live agent")
ORDINALS = {"first": 0, "former": 0, "second": 1, "latter": 1, "other": 1}
DIGIT_HOMOPHONES = {"for": 4, "fore": 4, "to": 2, "too": 2, "won": 1, "ate": 8}  # only between digits
DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
# Words that join two requests in one sentence ("my balance, and also my internet keeps dropping").
ALSO = (r"and also", r"and then", r"and another thing", r"as well as", r"also", r"plus", r"and i also", r"and")

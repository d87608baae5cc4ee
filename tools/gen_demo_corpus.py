#!/usr/bin/env python3
"""Writes tools/demo_corpus.txt, the demo corpus of `make demo` and of
`gpt2in train-skipgram`: simple English sentences, made from templates
written for this project, in which words of one kind share their contexts
(cats and kittens purr and chase mice, dogs and puppies bark and fetch,
cars and trucks drive and park; kings and queens rule, men and women work in
the village, and "he"/"his" or "she"/"her" follow the men and the women).
Skip-gram learns from exactly that: words used alike get similar vectors.

Public domain (CC0): the templates were written for this project.
Deterministic (Python's random.Random with a fixed seed; no network, no
input). Usage: python3 tools/gen_demo_corpus.py [OUT] (default
tools/demo_corpus.txt). The output is committed, so the demo needs no
Python; this script documents how it was made."""
import os
import random
import sys

SEED = 2019
N_SENTENCES = 5600

# Kinds of things and what is said about them. Every word of a kind gets
# every phrase of its kind, so the pairs share their contexts exactly.
KINDS = {
    "feline": (["cat", "kitten"], [
        "purred softly on the warm blanket", "chased a small grey mouse",
        "licked its fur and whiskers", "played with a ball of yarn",
        "drank a bowl of milk", "scratched the old sofa", "meowed at the door",
        "slept in the sun on the windowsill", "climbed the tall tree",
        "hissed at the mouse", "curled up and purred", "jumped onto the windowsill",
    ]),
    "canine": (["dog", "puppy"], [
        "barked at the mailman", "wagged its tail happily", "fetched the stick",
        "chewed on a bone", "went for a walk on the leash", "dug a hole in the yard",
        "sniffed the grass in the park", "played fetch with the ball",
        "growled and barked", "buried a bone in the yard", "howled at the moon",
        "chased its tail and barked",
    ]),
    "vehicle": (["car", "truck"], [
        "drove down the highway", "parked in the garage", "needed more fuel",
        "stopped at the red light", "had a flat tire", "raced along the road",
        "honked its horn in traffic", "was washed at the gas station",
        "drove over the bridge", "had a loud engine", "was towed to the garage",
        "turned left at the traffic light",
    ]),
    "fruit": (["apple", "banana"], [
        "was ripe and sweet", "was sliced for breakfast", "was peeled and eaten",
        "fell from the fruit bowl", "was sold at the fruit stand",
        "was mixed into the smoothie", "tasted sweet and fresh", "was packed for lunch",
    ]),
}

# People: three features, royal or common, male or female, grown-up or
# young, each carried by its own contexts, so that king - man + woman points
# at queen (royal, female, grown-up).
PEOPLE = {
    ("royal", "male", "old"): "king", ("royal", "female", "old"): "queen",
    ("royal", "male", "young"): "prince", ("royal", "female", "young"): "princess",
    ("common", "male", "old"): "man", ("common", "female", "old"): "woman",
    ("common", "male", "young"): "boy", ("common", "female", "young"): "girl",
}
AGE = {
    "old": ["paid the taxes", "read the newspaper", "drank coffee at breakfast",
            "went to work early", "drove to the office"],
    "young": ["played in the garden", "went to school", "learned to read",
              "played with toys", "did the homework"],
}
ROYAL = [
    "ruled the kingdom", "wore a golden crown", "sat on the royal throne",
    "lived in the royal palace", "gave orders to the knights", "greeted the royal court",
    "signed a royal decree", "rode to the castle",
]
COMMON = [
    "worked in the village shop", "bought bread at the market", "walked to the village",
    "rode the bus to work", "lived in a small village house", "paid for the groceries",
    "waited at the bus stop", "worked at the village market",
]
PRON = {"male": ("he", "He", "his"), "female": ("she", "She", "her")}
GENDER_END = {
    "male": ["and then he smiled", "and he was happy", "with his friends", "with his family"],
    "female": ["and then she smiled", "and she was happy", "with her friends", "with her family"],
}

OPEN = ["The", "A", "My", "Our", "That", "This"]
TIME = ["", "", "", "Yesterday", "This morning", "Every day", "Later"]


def sentence(rng):
    if rng.random() < 0.62:
        words, phrases = KINDS[rng.choice(list(KINDS))]
        w = rng.choice(words)
        first = rng.choice(phrases)
        s = f"{rng.choice(OPEN)} {w} {first}"
        if rng.random() < 0.3:                     # a second phrase, same kind
            s += f" and {rng.choice([p for p in phrases if p != first])}"
    else:
        (status, gender, age) = rng.choice(list(PEOPLE))
        w = PEOPLE[(status, gender, age)]
        if rng.random() < 0.5:
            act = rng.choice(ROYAL if status == "royal" else COMMON)
        else:
            act = rng.choice(AGE[age])
        he, He, his = PRON[gender]
        # The pronoun stays within a few tokens of the word, inside the
        # skip-gram window, so that it is part of the word's context.
        form = rng.randrange(4)
        if form == 0:
            return f"The {w} said that {he} {act}."
        elif form == 1:
            return f"{He} was the {w} who {act}."
        elif form == 2:
            s = f"The {w} and {his} family {act}"
        else:
            s = f"{rng.choice(['The', 'A', 'That'])} {w} {act} {rng.choice(GENDER_END[gender])}"
    t = rng.choice(TIME)
    if t:
        s = f"{t} {s[0].lower()}{s[1:]}"
    return s + "."


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(
        os.path.dirname(os.path.abspath(__file__)), "demo_corpus.txt")
    rng = random.Random(SEED)
    # No header line: every line is trained on. The corpus is public domain
    # (CC0), written for this project; README.md says so.
    lines = []
    para = []
    for i in range(N_SENTENCES):
        para.append(sentence(rng))
        if len(para) == 6 or i == N_SENTENCES - 1:   # paragraphs of six sentences
            lines.append(" ".join(para))
            para = []
    with open(out + ".tmp", "w") as f:
        f.write("\n".join(lines) + "\n")
    os.replace(out + ".tmp", out)


if __name__ == "__main__":
    main()

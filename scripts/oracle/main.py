"""The reference program that `trainer` replaces, kept verbatim in behaviour.

Usage: python main.py INPUT_CSV OUTPUT_TXT

Reads the CSV with pandas (first column is the index), fits a random forest with 5-fold
cross-validation and writes "The model score: <mean accuracy>" (no trailing newline).
"""

import sys

import pandas as pd
from sklearn.ensemble import RandomForestClassifier
from sklearn.model_selection import cross_val_score

input, output = sys.argv[1], sys.argv[2]
df = pd.read_csv(input, index_col=0)
X = df.iloc[:, :-1]
y = df.iloc[:, -1]
clf = RandomForestClassifier(
    n_estimators=10, max_depth=None, min_samples_split=2, random_state=0
)
scores = cross_val_score(clf, X, y, cv=5)
with open(output, "w") as f:
    f.write(f"The model score: {scores.mean()}")

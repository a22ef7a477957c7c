//! Exact port of scikit-learn's RandomForestClassifier cross-validation.

"""benchmarks/student_fit.py: how closely a student follows its teacher (BCE, logit correlation, cmAP on decisions)."""

import math

import numpy as np


def test_agreement_values_against_hand_computed_ones(load_benchmark):
    fit = load_benchmark("student_fit")
    teacher = np.array([[0.8, 0.1], [0.2, 0.6], [0.3, 0.05]])
    student = np.array([[0.6, 0.2], [0.4, 0.3], [0.1, 0.1]])
    out = fit.agreement(teacher, student)
    bce = -np.mean(teacher * np.log(student) + (1 - teacher) * np.log(1 - student))
    floor = -np.mean(teacher * np.log(teacher) + (1 - teacher) * np.log(1 - teacher))
    assert math.isclose(out["bce"], bce, rel_tol=1e-9) and math.isclose(out["bce_floor"], floor, rel_tol=1e-9)
    assert out["bce"] > out["bce_floor"]  # Gibbs: a student other than the teacher costs more than the teacher's entropy
    logit = lambda p: np.log(p / (1 - p))  # noqa: E731
    assert math.isclose(out["logit_r"], np.corrcoef(logit(teacher).ravel(), logit(student).ravel())[0, 1], rel_tol=1e-9)
    # the teacher decides species 0 in window 0 and species 1 in window 1; the student ranks both first: AP 1 each
    assert out["teacher_positives"] == 2 and out["cmap_on_teacher"] == 1.0
    assert out["windows"] == 3


def test_agreement_of_a_teacher_with_itself_and_with_a_student_that_ranks_it_backwards(load_benchmark):
    fit = load_benchmark("student_fit")
    teacher = np.array([[0.9], [0.7], [0.2], [0.1]])
    same = fit.agreement(teacher, teacher)
    assert math.isclose(same["bce"], same["bce_floor"]) and math.isclose(same["logit_r"], 1.0) and same["cmap_on_teacher"] == 1.0
    backwards = fit.agreement(teacher, 1 - teacher)
    assert math.isclose(backwards["logit_r"], -1.0)
    # the two decided windows ranked last of four: precision 1/3 at rank 3 and 2/4 at rank 4
    assert math.isclose(backwards["cmap_on_teacher"], (1 / 3 + 2 / 4) / 2)


def test_score_file_names_follow_the_benchmark(load_benchmark):
    fit = load_benchmark("student_fit")
    assert fit.score_slug("CNN cnn_mobilenetv3_large (cnn_distill zs-r1)") == "CNN_cnn_mobilenetv3_large__cnn_distill_zs-r1_"

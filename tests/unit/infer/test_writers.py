import numpy as np
import pandas as pd

from birdcall.infer import to_submission, write_submission


def test_submission_row_ids_and_columns(tmp_path):
    index = pd.MultiIndex.from_tuples(
        [("/x/site_A.ogg", 0.0, 5.0), ("/x/site_A.ogg", 5.0, 10.0), ("/y/B.flac", 0.0, 5.0)], names=["file", "start_time", "end_time"]
    )
    scores = pd.DataFrame(np.array([[0.1, 0.9], [0.2, 0.8], [0.5, 0.25]]), index=index, columns=["sp1", "sp2"])
    sub = to_submission(scores)
    assert sub.columns.tolist() == ["row_id", "sp1", "sp2"]
    assert sub["row_id"].tolist() == ["site_A_5", "site_A_10", "B_5"]
    path = write_submission(scores, tmp_path / "submission.csv")
    back = pd.read_csv(path)
    np.testing.assert_allclose(back[["sp1", "sp2"]].to_numpy(), scores.to_numpy(), rtol=1e-6)

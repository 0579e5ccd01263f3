import numpy as np
import pytest

from runtime.model.naming import flatten_variable, scalar_names


def test_scalar_keeps_its_name() -> None:
    assert scalar_names("lambda", ()) == ["lambda"]


def test_vector_elements_are_one_based() -> None:
    assert scalar_names("beta", (3,)) == ["beta[1]", "beta[2]", "beta[3]"]


def test_matrix_elements_are_comma_separated_row_major() -> None:
    assert scalar_names("Sigma", (2, 2)) == ["Sigma[1,1]", "Sigma[1,2]", "Sigma[2,1]", "Sigma[2,2]"]


def test_three_dimensional_names_follow_ravel_order() -> None:
    names = scalar_names("a", (2, 1, 3))
    assert len(names) == 6
    assert names[0] == "a[1,1,1]"
    assert names[4] == "a[2,1,2]"
    index = np.unravel_index(4, (2, 1, 3))
    assert names[4] == "a[" + ",".join(str(i + 1) for i in index) + "]"


def test_zero_size_variable_has_no_elements() -> None:
    assert scalar_names("empty", (0,)) == []
    assert scalar_names("empty", (3, 0)) == []


def test_flatten_draws_maps_element_ij_to_name_i1_j1() -> None:
    chains, draws = 2, 5
    element = 10 * np.arange(2)[:, None] + np.arange(3)[None, :]  # element [i, j] holds 10 i + j
    values = np.broadcast_to(element, (chains, draws, 2, 3)).copy()
    flat = flatten_variable("M", values, sample_ndim=2)
    assert list(flat) == scalar_names("M", (2, 3))
    for i in range(2):
        for j in range(3):
            piece = flat[f"M[{i + 1},{j + 1}]"]
            assert piece.shape == (chains, draws)
            assert np.all(piece == 10 * i + j)


def test_flatten_true_value_gives_zero_dimensional_arrays() -> None:
    flat = flatten_variable("beta", np.array([1.5, -2.0]), sample_ndim=0)
    assert set(flat) == {"beta[1]", "beta[2]"}
    assert flat["beta[2]"].shape == ()
    assert float(flat["beta[2]"]) == -2.0


def test_flatten_scalar_variable() -> None:
    values = np.arange(6.0).reshape(2, 3)
    flat = flatten_variable("mu", values, sample_ndim=2)
    assert list(flat) == ["mu"]
    np.testing.assert_array_equal(flat["mu"], values)
    assert float(flatten_variable("mu", np.array(0.25), sample_ndim=0)["mu"]) == 0.25


def test_flatten_rejects_more_sample_axes_than_the_array_has() -> None:
    with pytest.raises(ValueError, match="sample axes"):
        flatten_variable("mu", np.zeros(3), sample_ndim=2)

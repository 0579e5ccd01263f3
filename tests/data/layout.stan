// Draw layout checks: M is pinned near M0[i, j] = 10 * i + j, and z sits in the mode
// (-10 or +10) its chain starts nearest to, so each chain's draws of z share one sign.
transformed data {
  matrix[2, 3] M0;
  for (i in 1:2) {
    for (j in 1:3) {
      M0[i, j] = 10 * i + j;
    }
  }
}
parameters {
  matrix[2, 3] M;
  real z;
}
transformed parameters {
  matrix[3, 2] M_t = M';
}
model {
  to_vector(M) ~ normal(to_vector(M0), 0.001);
  target += log_mix(0.5, normal_lpdf(z | -10, 0.5), normal_lpdf(z | 10, 0.5));
}
generated quantities {
  array[2, 3] real A;
  vector[3] v = [1, 2, 3]';
  for (i in 1:2) {
    for (j in 1:3) {
      A[i, j] = 100 * i + j;
    }
  }
}

// Prior SBC's generator for poisson_large_counts_bug.stan: the rate from its prior, N counts.
data {
  int<lower=0> N;
}
generated quantities {
  real<lower=0> lambda = lognormal_rng(log(5), 0.7);
  array[N] int y = poisson_rng(rep_vector(lambda, N));
}

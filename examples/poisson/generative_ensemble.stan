// The 2018 post's generator: a rate from the prior, then N counts given it.
data {
  int<lower=0> N;
}
generated quantities {
  real<lower=0> lambda = abs(normal_rng(0, 6.44787));
  array[N] int y = poisson_rng(rep_vector(lambda, N));
}

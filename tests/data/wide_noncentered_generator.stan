// Draws wide_noncentered.stan's parameters from its prior, then the observations given them.
data {
  int<lower=1> J;
  int<lower=1> N;
  array[N] int<lower=1, upper=J> group;
}
generated quantities {
  real mu = normal_rng(0, 1);
  real<lower=0> tau = abs(normal_rng(0, 1));
  vector[J] z = to_vector(normal_rng(rep_vector(0, J), 1));
  vector[N] y = to_vector(normal_rng(mu + tau * z[group], 1));
}

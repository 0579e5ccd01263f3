// Draws groups.stan's parameters from its prior, then the observations given them.
data {
  int<lower=1> J;
  int<lower=1> N;
  array[N] int<lower=1, upper=J> group;
}
generated quantities {
  vector[J] theta = to_vector(normal_rng(rep_vector(0, J), 1));
  vector[N] y = to_vector(normal_rng(theta[group], 1));
}

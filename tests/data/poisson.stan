// Poisson counts with a gamma prior; lambda_twice checks fixed_param at given inits.
data {
  int<lower=0> N;
  array[N] int<lower=0> y;
}
parameters {
  real<lower=0> lambda;
}
model {
  lambda ~ gamma(2, 1);
  y ~ poisson(lambda);
}
generated quantities {
  real lambda_twice = 2 * lambda;
  array[N] int y_rep = poisson_rng(rep_array(lambda, N));
}

// The 2018 post's model (Betancourt's Poisson example): N counts with one rate.
data {
  int<lower=0> N;
  array[N] int<lower=0> y;
}
parameters {
  real<lower=0> lambda;
}
model {
  lambda ~ normal(0, 6.44787);
  y ~ poisson(lambda);
}
generated quantities {
  // StanFleet convention: a generated quantity named log_lik is the log-likelihood of the data;
  // its sum becomes an SBC test quantity, which catches bugs that parameter ranks miss.
  real log_lik = poisson_lpmf(y | lambda);
}

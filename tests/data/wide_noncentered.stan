// A non-centered hierarchical model with J groups: J + 2 scalar parameters (mu, tau, z[1..J]).
data {
  int<lower=1> J;
  int<lower=1> N;
  array[N] int<lower=1, upper=J> group;
  vector[N] y;
}
parameters {
  real mu;
  real<lower=0> tau;
  vector[J] z;
}
model {
  mu ~ normal(0, 1);
  tau ~ normal(0, 1);
  z ~ std_normal();
  y ~ normal(mu + tau * z[group], 1);
}

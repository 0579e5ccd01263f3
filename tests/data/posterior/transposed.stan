// A regression whose covariates are stored one column per observation: the declarations do not say how to
// append observations to Xt (N sizes its second dimension), so posterior SBC needs an --augment hook.
data {
  int<lower=0> N;
  matrix[1, N] Xt;
  vector[N] y;
}
parameters {
  real beta;
  real<lower=0> sigma;
}
model {
  beta ~ normal(0, 2);
  sigma ~ exponential(1);
  y ~ normal(beta * Xt[1]', sigma);
}
generated quantities {
  vector[N] y_rep = to_vector(normal_rng(beta * Xt[1]', sigma));
}

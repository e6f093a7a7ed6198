//! The cryptographic ceiling, measured in this process on this machine: the
//! CPU time of one token signature with each algorithm and of one RS256
//! assertion verification — the work a token exchange cannot avoid.

use std::time::Duration;

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::{KeyPair, KeySize};
use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, Ed25519KeyPair, KeyPair as _, RSA_PKCS1_2048_8192_SHA256,
    RSA_PKCS1_SHA256, RsaPublicKeyComponents,
};

use crate::process::thread_cpu;

/// Per-operation CPU times.
#[derive(Debug, Clone, Copy)]
pub struct Ceiling {
    pub rs256_sign: Duration,
    pub es256_sign: Duration,
    pub eddsa_sign: Duration,
    pub rs256_verify: Duration,
}

impl Ceiling {
    pub fn sign(&self, algorithm: &str) -> Duration {
        match algorithm {
            "ES256" => self.es256_sign,
            "EdDSA" => self.eddsa_sign,
            _ => self.rs256_sign,
        }
    }
}

/// CPU time per call of `op`, over at least `min_cpu` of CPU.
fn per_op(min_cpu: Duration, mut op: impl FnMut()) -> Duration {
    for _ in 0..50 {
        op(); // warm caches
    }
    let start = thread_cpu();
    let mut n = 0u32;
    while thread_cpu() - start < min_cpu {
        for _ in 0..50 {
            op();
        }
        n += 50;
    }
    (thread_cpu() - start) / n
}

/// Measures on the calling thread (a blocking thread: this takes about a second).
pub fn measure() -> Ceiling {
    let min_cpu = Duration::from_millis(250);
    let rng = SystemRandom::new();
    // A token-sized signing input: header + ~700 bytes of claims, base64url.
    let input = vec![b'a'; 1000];

    let rsa = KeyPair::generate(KeySize::Rsa2048).expect("RSA key");
    let mut signature = vec![0u8; rsa.public_modulus_len()];
    let rs256_sign = per_op(min_cpu, || {
        rsa.sign(&RSA_PKCS1_SHA256, &rng, &input, &mut signature).expect("sign");
    });

    let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).expect("EC key");
    let ec = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref()).expect("EC key");
    let es256_sign = per_op(min_cpu, || {
        ec.sign(&rng, &input).expect("sign");
    });

    let pkcs8 = Ed25519KeyPair::generate_pkcs8(&rng).expect("Ed25519 key");
    let ed = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).expect("Ed25519 key");
    let eddsa_sign = per_op(min_cpu, || {
        std::hint::black_box(ed.sign(&input));
    });

    // Verification as a JWK-configured verifier does it: from (n, e) each time.
    rsa.sign(&RSA_PKCS1_SHA256, &rng, &input, &mut signature).expect("sign");
    let public = rsa.public_key();
    let components = RsaPublicKeyComponents {
        n: public.modulus().big_endian_without_leading_zero().to_vec(),
        e: public.exponent().big_endian_without_leading_zero().to_vec(),
    };
    let rs256_verify = per_op(min_cpu, || {
        components.verify(&RSA_PKCS1_2048_8192_SHA256, &input, &signature).expect("verify");
    });
    Ceiling { rs256_sign, es256_sign, eddsa_sign, rs256_verify }
}

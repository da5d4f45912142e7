//! The attribute's arguments as written: keys and values with their spans, before any meaning is
//! given to them. Only syntax errors stop here; everything else is judged in `config`.

use proc_macro2::TokenStream;
use quote::ToTokens;
use syn::parse::{ParseStream, Parser};
use syn::{Expr, Path, Token};

/// One `key` or `key = value` of `#[chaos_test(...)]`.
pub(crate) struct RawArg {
    /// Any path: unknown and malformed keys are reported later, together with other errors.
    pub key: Path,
    pub value: RawValue,
}

pub(crate) enum RawValue {
    /// `key` on its own.
    Absent,
    /// `key =` with nothing after the `=`.
    Missing(Token![=]),
    Given(Expr),
}

pub(crate) fn parse_args(attr: TokenStream) -> syn::Result<Vec<RawArg>> {
    let mut args = Vec::new();
    let parser = syn::meta::parser(|meta| {
        let value = parse_value(&meta.path, meta.input)?;
        args.push(RawArg {
            key: meta.path,
            value,
        });
        Ok(())
    });
    parser.parse2(attr)?;
    Ok(args)
}

fn parse_value(key: &Path, input: ParseStream) -> syn::Result<RawValue> {
    if input.is_empty() || input.peek(Token![,]) {
        return Ok(RawValue::Absent);
    }
    if !input.peek(Token![=]) {
        let key = key.to_token_stream().to_string().replace(' ', "");
        return Err(input.error(format!(
            "expected `=` or `,` after `{key}`: arguments are written `key = value`, separated \
             by commas"
        )));
    }
    let eq: Token![=] = input.parse()?;
    if input.is_empty() || input.peek(Token![,]) {
        return Ok(RawValue::Missing(eq));
    }
    Ok(RawValue::Given(input.parse()?))
}

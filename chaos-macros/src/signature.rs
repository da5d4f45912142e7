//! Which items `#[chaos_test]` accepts: an `async fn` with one `&Cluster` parameter that returns
//! `()` or `Result<(), E>`. The harness calls it through a plain `fn` pointer, so anything else
//! (generics, receivers, other ABIs) could not be called, and is an error at the token at fault.
//! So are attributes that would register or run it a second time (`#[chaos_test]` again,
//! `#[tokio::test]`), and the name `main`.
//!
//! Attributes above `#[chaos_test]` have expanded before it runs and are out of its sight: a
//! `#[test]` or `#[tokio::test]` there makes its own errors, or, in a suite built without
//! `--test` (`harness = false`), removes the function before `#[chaos_test]` sees it.

use proc_macro2::TokenStream;
use quote::{ToTokens, quote};
use syn::{
    AttrStyle, Attribute, Error, FnArg, GenericArgument, Ident, Item, ItemFn, PathArguments,
    ReturnType, Safety, Signature, Type,
};

use crate::errors::Errors;

/// An item `#[chaos_test]` cannot register: why, and what to emit in its place.
pub(crate) struct Rejected {
    pub error: Error,
    /// The item as written, without the attributes that would expand again and add their errors
    /// (or, for `#[chaos_test]`, the same ones twice) to the user's.
    pub item: TokenStream,
}

/// The test function, if its shape is one the harness can call.
pub(crate) fn parse_test_fn(item: TokenStream) -> Result<ItemFn, Rejected> {
    let mut test_fn = match syn::parse2(item.clone()) {
        Ok(Item::Fn(test_fn)) => test_fn,
        Ok(other) => {
            let error = not_a_function(&other);
            return Err(Rejected { error, item });
        }
        Err(error) => return Err(Rejected { error, item }),
    };
    let mut errors = Errors::default();
    test_fn.attrs.retain(|attr| match stacked_attribute(attr) {
        Some(error) => {
            errors.push(error);
            false
        }
        None => true,
    });
    errors.take(check_signature(&test_fn.sig));
    match errors.finish() {
        Ok(()) => Ok(test_fn),
        Err(error) => {
            if test_fn.sig.ident == "main" {
                // Under another name, it is neither the crate's entry point, which rustc would
                // refuse as `async`, nor a second `main` beside the one `main!()` writes.
                test_fn.sig.ident = Ident::new("__chaos_test_main", test_fn.sig.ident.span());
                test_fn.attrs.push(syn::parse_quote!(#[allow(dead_code)]));
            }
            Err(Rejected {
                error,
                item: test_fn.into_token_stream(),
            })
        }
    }
}

/// An attribute below `#[chaos_test]` that would register the function again or run it as a
/// test of another harness, without a cluster. Matched by the last segment of its path, as
/// written: `chaos_test` (under any path it is imported by), `test` (`#[test]`,
/// `#[tokio::test]`, `#[async_std::test]`, `#[core::prelude::v1::test]`).
fn stacked_attribute(attr: &Attribute) -> Option<Error> {
    if !matches!(attr.style, AttrStyle::Outer) {
        return None;
    }
    let path = attr.path();
    let last = path.segments.last()?.ident.to_string();
    let written = path.to_token_stream().to_string().replace(' ', "");
    let message = match last.as_str() {
        "chaos_test" => format!(
            "`#[{written}]` is given twice on this function: remove this one (put all keys in \
             one attribute)"
        ),
        "test" => format!(
            "remove `#[{written}]`: `#[chaos_test]` makes this a test of the chaos harness, \
             which runs it on its own runtime with a cluster; another test attribute would run \
             it without one"
        ),
        _ => return None,
    };
    Some(Error::new_spanned(attr, message))
}

fn not_a_function(item: &Item) -> Error {
    let (what, head) = match item {
        Item::Struct(i) => ("a struct", head(&i.struct_token, &i.ident)),
        Item::Enum(i) => ("an enum", head(&i.enum_token, &i.ident)),
        Item::Union(i) => ("a union", head(&i.union_token, &i.ident)),
        Item::Const(i) => ("a const", head(&i.const_token, &i.ident)),
        Item::Static(i) => ("a static", head(&i.static_token, &i.ident)),
        Item::Mod(i) => ("a module", head(&i.mod_token, &i.ident)),
        Item::Trait(i) => ("a trait", head(&i.trait_token, &i.ident)),
        Item::Type(i) => ("a type alias", head(&i.type_token, &i.ident)),
        Item::Impl(i) => ("an impl block", i.impl_token.to_token_stream()),
        Item::Use(i) => ("a `use`", i.use_token.to_token_stream()),
        other => ("this item", other.to_token_stream()),
    };
    Error::new_spanned(
        head,
        format!(
            "`#[chaos_test]` goes on an `async fn`, not on {what}: put it on the test function"
        ),
    )
}

fn head(keyword: &impl ToTokens, ident: &Ident) -> TokenStream {
    quote!(#keyword #ident)
}

fn check_signature(sig: &Signature) -> syn::Result<()> {
    let mut errors = Errors::default();
    let name = &sig.ident;
    if name == "main" {
        errors.push(Error::new_spanned(
            name,
            "a `#[chaos_test]` function cannot be named `main`: that is the suite's entry point, \
             which `chaos_runtime::main!()` writes; give the test a name of its own",
        ));
    }
    if let Some(constness) = &sig.constness {
        errors.push(Error::new_spanned(
            constness,
            "a `#[chaos_test]` function cannot be `const`: remove `const`",
        ));
    }
    if let Safety::Unsafe(unsafety) = &sig.safety {
        errors.push(Error::new_spanned(
            unsafety,
            "a `#[chaos_test]` function cannot be `unsafe`: the harness calls it like any safe \
             function; remove `unsafe` and use `unsafe` blocks inside",
        ));
    }
    if let Some(abi) = &sig.abi {
        errors.push(Error::new_spanned(
            abi,
            "a `#[chaos_test]` function cannot have an `extern` ABI: remove it",
        ));
    }
    if sig.asyncness.is_none() {
        errors.push(Error::new_spanned(
            sig.fn_token,
            format!("a `#[chaos_test]` function must be `async`: write `async fn {name}`"),
        ));
    }
    if !sig.generics.params.is_empty() {
        errors.push(Error::new_spanned(
            &sig.generics,
            "a `#[chaos_test]` function cannot be generic: the harness calls it with `&Cluster` \
             only; remove the generic parameters",
        ));
    }
    if let Some(where_clause) = &sig.generics.where_clause {
        errors.push(Error::new_spanned(
            where_clause,
            "a `#[chaos_test]` function cannot have a `where` clause: remove it",
        ));
    }
    errors.take(check_parameters(sig));
    errors.take(check_return_type(&sig.output));
    errors.finish()
}

/// Exactly one parameter, `&Cluster`.
fn check_parameters(sig: &Signature) -> syn::Result<()> {
    let mut errors = Errors::default();
    if let Some(receiver) = sig.receiver() {
        errors.push(Error::new_spanned(
            receiver,
            "a `#[chaos_test]` function cannot take `self`: make it a free function that takes \
             `cluster: &Cluster`",
        ));
    }
    match sig.inputs.first() {
        None => errors.push(Error::new(
            sig.paren_token.span.join(),
            "a `#[chaos_test]` function takes the cluster: add the parameter `cluster: &Cluster`",
        )),
        Some(FnArg::Typed(param)) => errors
            .take(check_cluster_type(&param.ty))
            .unwrap_or_default(),
        Some(FnArg::Receiver(_)) => {}
    }
    let extra: Vec<&FnArg> = sig.inputs.iter().skip(1).collect();
    if !extra.is_empty() {
        errors.push(Error::new_spanned(
            quote!(#(#extra),*),
            "a `#[chaos_test]` function takes exactly one parameter, `cluster: &Cluster`: remove \
             the others (everything about a test is reached from its cluster)",
        ));
    }
    errors.finish()
}

/// `&Cluster`, under any path that ends in `Cluster` (`&chaos_runtime::Cluster`).
fn check_cluster_type(ty: &Type) -> syn::Result<()> {
    match ty {
        Type::Reference(reference) if is_cluster(&reference.elem) => {
            if let Some(mutability) = &reference.mutability {
                let and = &reference.and_token;
                return Err(Error::new_spanned(
                    quote!(#and #mutability),
                    "the harness shares the cluster and cannot lend it mutably: take `&Cluster`, \
                     not `&mut Cluster`",
                ));
            }
            match &reference.lifetime {
                Some(lifetime) if lifetime.ident != "_" => Err(Error::new_spanned(
                    lifetime,
                    "the cluster is lent for the duration of the test only: take `&Cluster` \
                     without a lifetime",
                )),
                _ => Ok(()),
            }
        }
        _ if is_cluster(ty) => Err(Error::new_spanned(
            ty,
            "the harness keeps the cluster and lends it to the test: take `&Cluster`, not \
             `Cluster`",
        )),
        _ => Err(Error::new_spanned(
            ty,
            "the parameter of a `#[chaos_test]` function must be `&Cluster` (from \
             `chaos_runtime::prelude`)",
        )),
    }
}

fn is_cluster(ty: &Type) -> bool {
    match ty {
        Type::Path(path) if path.qself.is_none() => path.path.segments.last().is_some_and(|last| {
            last.ident == "Cluster" && matches!(last.arguments, PathArguments::None)
        }),
        _ => false,
    }
}

/// Nothing, `()`, or `Result<(), E>` under any path (`anyhow::Result<()>`, `io::Result<()>`).
/// Whether `E` converts into `anyhow::Error` is left to the type checker.
fn check_return_type(output: &ReturnType) -> syn::Result<()> {
    let ReturnType::Type(_, ty) = output else {
        return Ok(());
    };
    if is_unit(ty) {
        return Ok(());
    }
    match result_ok_type(ty) {
        Some(ok) if is_unit(ok) => Ok(()),
        Some(ok) => Err(Error::new_spanned(
            ok,
            "the harness would throw this `Ok` value away: return `Result<(), E>`, like \
             `anyhow::Result<()>`",
        )),
        None => Err(Error::new_spanned(
            ty,
            "a `#[chaos_test]` function returns `anyhow::Result<()>`, another `Result<(), E>`, \
             or nothing: change the return type",
        )),
    }
}

fn is_unit(ty: &Type) -> bool {
    matches!(ty, Type::Tuple(tuple) if tuple.elems.is_empty())
}

/// `T` of a type written `Result<T, ..>` (the last path segment is `Result`).
fn result_ok_type(ty: &Type) -> Option<&Type> {
    let Type::Path(path) = ty else {
        return None;
    };
    let last = path.path.segments.last()?;
    let PathArguments::AngleBracketed(args) = &last.arguments else {
        return None;
    };
    match args.args.first()? {
        GenericArgument::Type(ok) if last.ident == "Result" => Some(ok),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn errors(item: TokenStream) -> Vec<String> {
        match parse_test_fn(item) {
            Ok(_) => panic!("expected an error"),
            Err(rejected) => rejected.error.into_iter().map(|e| e.to_string()).collect(),
        }
    }

    /// The item emitted in place of a rejected one.
    fn emitted(item: TokenStream) -> String {
        match parse_test_fn(item) {
            Ok(_) => panic!("expected an error"),
            Err(rejected) => rejected.item.to_string(),
        }
    }

    #[test]
    fn accepts_the_documented_shapes() {
        for item in [
            quote!(
                async fn t(cluster: &Cluster) -> anyhow::Result<()> {
                    Ok(())
                }
            ),
            quote!(
                async fn t(_: &chaos_runtime::Cluster) {}
            ),
            quote!(
                async fn t(c: &'_ Cluster) -> () {}
            ),
            quote!(
                pub async fn t(c: &Cluster) -> Result<(), Box<dyn Error + Send + Sync>> {
                    Ok(())
                }
            ),
            quote!(
                async fn t(c: &Cluster) -> std::io::Result<()> {
                    Ok(())
                }
            ),
        ] {
            if let Err(rejected) = parse_test_fn(item.clone()) {
                panic!("{item}: {}", rejected.error);
            }
        }
    }

    #[test]
    fn reports_every_fault_of_a_signature() {
        let e = errors(quote!(
            const unsafe extern "C" fn t<T>(a: Cluster, b: u8) -> u32
            where
                T: Send,
            {
            }
        ));
        let expected = [
            "a `#[chaos_test]` function cannot be `const`",
            "a `#[chaos_test]` function cannot be `unsafe`",
            "a `#[chaos_test]` function cannot have an `extern` ABI",
            "a `#[chaos_test]` function must be `async`",
            "a `#[chaos_test]` function cannot be generic",
            "a `#[chaos_test]` function cannot have a `where` clause",
            "the harness keeps the cluster and lends it to the test",
            "a `#[chaos_test]` function takes exactly one parameter",
            "a `#[chaos_test]` function returns `anyhow::Result<()>`",
        ];
        assert_eq!(e.len(), expected.len(), "{e:#?}");
        for (error, start) in e.iter().zip(expected) {
            assert!(
                error.starts_with(start),
                "{error:?} should start with {start:?}"
            );
        }
    }

    #[test]
    fn result_with_a_value_points_at_the_value() {
        let e = errors(quote!(
            async fn t(c: &Cluster) -> Result<u32, String> {
                Ok(1)
            }
        ));
        assert!(
            e[0].starts_with("the harness would throw this `Ok` value away"),
            "{e:?}"
        );
    }

    #[test]
    fn attributes_that_would_run_it_again_are_refused_and_not_emitted() {
        let item = quote!(
            #[chaos_runtime::chaos_test(workers = 2)]
            #[tokio::test]
            #[doc = "kept"]
            #[test]
            async fn t(cluster: &Cluster) {}
        );
        let e = errors(item.clone());
        assert_eq!(e.len(), 3, "{e:#?}");
        assert!(
            e[0].starts_with("`#[chaos_runtime::chaos_test]` is given twice on this function"),
            "{e:?}"
        );
        assert!(e[1].starts_with("remove `#[tokio::test]`"), "{e:?}");
        assert!(e[2].starts_with("remove `#[test]`"), "{e:?}");
        let emitted = emitted(item);
        assert!(!emitted.contains("chaos_test") && !emitted.contains("test ]"));
        assert!(
            emitted.starts_with("# [doc = \"kept\"] async fn t"),
            "{emitted}"
        );
    }

    #[test]
    fn a_test_named_main_is_refused() {
        let e = errors(quote!(
            async fn main(cluster: &Cluster) {}
        ));
        assert_eq!(e.len(), 1, "{e:?}");
        assert!(
            e[0].starts_with("a `#[chaos_test]` function cannot be named `main`"),
            "{e:?}"
        );
    }

    #[test]
    fn other_items_are_named() {
        let e = errors(quote!(
            struct S;
        ));
        assert!(e[0].starts_with("`#[chaos_test]` goes on an `async fn`, not on a struct"));
    }
}

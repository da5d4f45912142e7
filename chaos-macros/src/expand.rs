//! The expansion: the function unchanged, plus its registration in `chaos_runtime`'s test slice.

use chaos_topology::Version;
use proc_macro2::{Ident, Literal, Span, TokenStream};
use quote::{format_ident, quote, quote_spanned};
use syn::ext::IdentExt;
use syn::spanned::Spanned;
use syn::{FnArg, ItemFn, ReturnType};

use crate::config::Config;
use crate::errors::Errors;
use crate::signature::parse_test_fn;

/// Expands `#[chaos_test(<attr>)] <item>`.
///
/// On errors the item is still emitted as written, next to the `compile_error!`s, so that the
/// user sees only what is wrong with the attribute, not follow-up errors about a missing function
/// or an unused import.
pub fn expand(attr: TokenStream, item: TokenStream) -> TokenStream {
    let config = Config::parse(attr);
    let test_fn = parse_test_fn(item.clone());
    let (config, test_fn) = match (config, test_fn) {
        (Ok(config), Ok(test_fn)) => (config, test_fn),
        (config, test_fn) => {
            let mut errors = Errors::default();
            errors.take(config);
            errors.take(test_fn);
            let errors = errors.finish().err().map(|e| e.into_compile_error());
            return quote!(#item #errors);
        }
    };
    let registration = registration(&config, &test_fn);
    quote! {
        #item
        #registration
    }
}

/// The `TestRegistration` static, placed in `TESTS` by linkme. Its paths go through
/// `chaos_runtime::__private`, so that a user's crate needs no dependency but `chaos-runtime`.
fn registration(config: &Config, test_fn: &ItemFn) -> TokenStream {
    let private = quote!(::chaos_runtime::__private);
    let ident = &test_fn.sig.ident;
    let name = ident.unraw().to_string();
    let static_name = format_ident!("__CHAOS_TEST_{}", name.to_uppercase());
    // `line!()` spanned at the name gives the line of the function, not of the attribute.
    let line = quote_spanned!(ident.span()=> ::core::line!());
    let masters = Literal::u32_unsuffixed(config.masters);
    let workers = Literal::u32_unsuffixed(config.workers);
    let k8s = version_slice(&config.k8s);
    let master_versions = version_slice(&config.master_versions);
    let worker_versions = version_slice(&config.worker_versions);
    let timeout = optional(config.timeout.map(|timeout| {
        let millis = u64::try_from(timeout.as_millis()).expect("validated in config");
        let millis = Literal::u64_unsuffixed(millis);
        quote!(::core::time::Duration::from_millis(#millis))
    }));
    let ignore = optional(config.ignore.as_deref().map(|reason| quote!(#reason)));
    let run = run_closure(test_fn);
    quote! {
        #[#private::linkme::distributed_slice(#private::TESTS)]
        #[linkme(crate = #private::linkme)]
        #[doc(hidden)]
        static #static_name: #private::TestRegistration = #private::TestRegistration {
            name: #name,
            module_path: ::core::module_path!(),
            file: ::core::file!(),
            line: #line,
            masters: #masters,
            workers: #workers,
            k8s: #k8s,
            master_versions: #master_versions,
            worker_versions: #worker_versions,
            timeout: #timeout,
            ignore: #ignore,
            run: #run,
        };
    }
}

/// Normalized, as `Version` displays them: `"v1.29.14"` is written `"1.29.14"`.
fn version_slice(versions: &[Version]) -> TokenStream {
    let versions = versions.iter().map(Version::to_string);
    quote!(&[#(#versions),*])
}

fn optional(value: Option<TokenStream>) -> TokenStream {
    match value {
        Some(value) => quote!(::core::option::Option::Some(#value)),
        None => quote!(::core::option::Option::None),
    }
}

/// `fn(Cluster) -> TestFuture`: owns the cluster, lends it to the test, converts its result.
///
/// Spans make type errors in this glue point at the user's code: a future that is not `Send` at
/// the function's name, a wrong parameter type at the parameter, a result that does not convert
/// at the return type.
fn run_closure(test_fn: &ItemFn) -> TokenStream {
    let sig = &test_fn.sig;
    let ident = &sig.ident;
    let param_span = match sig.inputs.first() {
        Some(FnArg::Typed(param)) => param.ty.span(),
        _ => ident.span(),
    };
    let output_span = match &sig.output {
        ReturnType::Type(_, ty) => ty.span(),
        ReturnType::Default => ident.span(),
    };
    // Mixed-site hygiene: a test function named `cluster` is not shadowed by this binding.
    let cluster = Ident::new("cluster", Span::mixed_site());
    // Bound only after the call, so it cannot shadow the function; spanned so that a result that
    // does not convert is reported at the return type, not at the attribute.
    let result = Ident::new("result", output_span);
    let borrow = quote_spanned!(param_span=> &#cluster);
    let into_test_result = quote_spanned!(output_span=>
        ::chaos_runtime::__private::IntoTestResult::into_test_result
    );
    quote_spanned! {ident.span()=>
        |#cluster| ::std::boxed::Box::pin(async move {
            let #result = #ident(#borrow).await;
            #into_test_result(#result)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn expanded(attr: TokenStream, item: TokenStream) -> String {
        let file = syn::parse2(expand(attr, item)).expect("the expansion is a file of items");
        prettyplease::unparse(&file)
    }

    #[test]
    fn three_masters_three_workers_with_older_workers() {
        insta::assert_snapshot!(expanded(
            quote!(
                masters = 3,
                workers = 3,
                k8s = "1.29",
                worker_versions = ["1.28"]
            ),
            quote! {
                async fn api_survives_worker_loss(cluster: &Cluster) -> anyhow::Result<()> {
                    let _ = cluster.client();
                    Ok(())
                }
            },
        ));
    }

    #[test]
    fn defaults() {
        insta::assert_snapshot!(expanded(
            quote!(),
            quote!(
                async fn smoke(_cluster: &Cluster) {}
            ),
        ));
    }

    #[test]
    fn version_matrix_normalizes_versions() {
        insta::assert_snapshot!(expanded(
            quote!(
                k8s = ["1.29", "v1.30.2"],
                worker_versions = ["v1.29", "1.28"],
                workers = 2
            ),
            quote!(
                async fn upgrade_matrix(cluster: &chaos_runtime::Cluster) -> anyhow::Result<()> {
                    Ok(())
                }
            ),
        ));
    }

    #[test]
    fn ignore_with_reason_and_timeout() {
        insta::assert_snapshot!(expanded(
            quote!(ignore = "needs a real kind cluster", timeout = "90s"),
            quote!(
                pub async fn slow_drain(cluster: &Cluster) -> Result<(), std::io::Error> {
                    Ok(())
                }
            ),
        ));
    }

    #[test]
    fn errors_keep_the_function() {
        insta::assert_snapshot!(expanded(
            quote!(wokers = 3),
            quote!(
                fn not_async(cluster: &Cluster) {}
            ),
        ));
    }
}

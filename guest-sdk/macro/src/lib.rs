//! The `#[plugin]` attribute of the Gannet guest SDK (re-exported as
//! `gannet_guest::plugin`; see its documentation there).
//!
//! Owns checking the user's function signature, with errors at the user's span that state
//! the rule, and generating the glue: config parsing in `init`, the per-instance state, the
//! `process` trampoline and the component exports. The glue never panics.

use proc_macro::TokenStream;
use proc_macro2::{Span, TokenStream as TokenStream2};
use quote::{quote, quote_spanned};
use syn::parse::{Parse, ParseStream};
use syn::spanned::Spanned;
use syn::{FnArg, ItemFn, Path, ReturnType, Token, Type};

/// The rule every error message states.
const RULE: &str = "a Gannet plugin function looks like `fn process(event: Lifecycle, record: &mut Container, config: &Config) -> Result<Verdict>`; the record may be `&Container` and the config parameter is optional";

/// Exports a function as the plugin's `process`; see `gannet_guest::plugin`.
#[proc_macro_attribute]
pub fn plugin(attr: TokenStream, item: TokenStream) -> TokenStream {
    let args = syn::parse_macro_input!(attr as Args);
    let func = syn::parse_macro_input!(item as ItemFn);
    match expand(&args, &func) {
        Ok(tokens) => tokens.into(),
        Err(error) => {
            let error = error.to_compile_error();
            quote!(#func #error).into()
        }
    }
}

/// The attribute's arguments: nothing, or `init = path`.
struct Args {
    init: Option<Path>,
}

impl Parse for Args {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        if input.is_empty() {
            return Ok(Self { init: None });
        }
        let key: syn::Ident = input.parse()?;
        if key != "init" {
            return Err(syn::Error::new(
                key.span(),
                "unknown argument; `#[plugin]` takes nothing or `init = function_name`",
            ));
        }
        input.parse::<Token![=]>()?;
        let path: Path = input.parse()?;
        if !input.is_empty() {
            return Err(input
                .error("unexpected tokens; `#[plugin]` takes nothing or `init = function_name`"));
        }
        Ok(Self { init: Some(path) })
    }
}

/// How the user's function takes the record.
enum RecordRef {
    Shared,
    Mut,
}

fn rule_error(span: Span, what: &str) -> syn::Error {
    syn::Error::new(span, format!("{what}: {RULE}"))
}

fn expand(args: &Args, func: &ItemFn) -> syn::Result<TokenStream2> {
    let sig = &func.sig;
    if let Some(token) = &sig.asyncness {
        return Err(rule_error(
            token.span(),
            "a plugin function cannot be `async`",
        ));
    }
    if let Some(token) = &sig.constness {
        return Err(rule_error(
            token.span(),
            "a plugin function cannot be `const`",
        ));
    }
    if let Some(token) = &sig.unsafety {
        return Err(rule_error(
            token.span(),
            "a plugin function cannot be `unsafe`",
        ));
    }
    if !sig.generics.params.is_empty() || sig.generics.where_clause.is_some() {
        return Err(rule_error(
            sig.generics.span(),
            "a plugin function cannot be generic",
        ));
    }
    if let Some(variadic) = &sig.variadic {
        return Err(rule_error(
            variadic.span(),
            "a plugin function cannot be variadic",
        ));
    }
    let params: Vec<&FnArg> = sig.inputs.iter().collect();
    let mut types = Vec::with_capacity(3);
    for param in &params {
        match param {
            FnArg::Receiver(r) => {
                return Err(rule_error(r.span(), "a plugin function cannot take `self`"));
            }
            FnArg::Typed(pat) => types.push(&*pat.ty),
        }
    }
    if types.len() < 2 || types.len() > 3 {
        let span = if sig.inputs.is_empty() {
            sig.ident.span()
        } else {
            sig.inputs.span()
        };
        return Err(rule_error(
            span,
            &format!(
                "a plugin function takes 2 or 3 parameters, not {}",
                types.len()
            ),
        ));
    }
    if let Type::Reference(r) = types[0] {
        return Err(rule_error(
            r.span(),
            "the first parameter is the event, taken by value (`event: Lifecycle`)",
        ));
    }
    let record = match types[1] {
        Type::Reference(r) if r.mutability.is_some() => RecordRef::Mut,
        Type::Reference(_) => RecordRef::Shared,
        other => {
            return Err(rule_error(
                other.span(),
                "the second parameter is the record, borrowed (`record: &mut Container` or `record: &Container`)",
            ));
        }
    };
    let state_ty: Option<&Type> = match types.get(2) {
        None => None,
        Some(Type::Reference(r)) if r.mutability.is_none() => Some(&r.elem),
        Some(other) => {
            return Err(rule_error(
                other.span(),
                "the third parameter is the config, borrowed read-only (`config: &Config`)",
            ));
        }
    };
    let output = match &sig.output {
        ReturnType::Type(_, ty) => ty,
        ReturnType::Default => {
            return Err(rule_error(
                sig.paren_token.span.close(),
                "a plugin function returns `Result<Verdict>`",
            ));
        }
    };
    if args.init.is_some() && state_ty.is_none() {
        return Err(rule_error(
            sig.ident.span(),
            "with `init = ...`, the function needs a third parameter (`state: &State`) for what init returns",
        ));
    }

    let name = &sig.ident;
    let unit: Type = syn::parse_quote!(());
    let state = state_ty.unwrap_or(&unit);

    // The signature check: a mismatch is reported at the user's function name (or type).
    let record_ty = match record {
        RecordRef::Mut => quote!(&mut ::gannet_guest::Container<'_>),
        RecordRef::Shared => quote!(&::gannet_guest::Container<'_>),
    };
    let check = match state_ty {
        Some(s) => quote_spanned! {name.span()=>
            const _: fn(::gannet_guest::Lifecycle, #record_ty, &#s)
                -> ::gannet_guest::Result<::gannet_guest::Verdict> = #name;
        },
        None => quote_spanned! {name.span()=>
            const _: fn(::gannet_guest::Lifecycle, #record_ty)
                -> ::gannet_guest::Result<::gannet_guest::Verdict> = #name;
        },
    };
    let _ = output;

    let init_body = match (&args.init, state_ty) {
        (Some(init), _) => quote_spanned! {init.span()=>
            ::gannet_guest::__private::into_wit(#init(
                ::gannet_guest::__private::parse_config(config)?,
            ))
        },
        (None, Some(s)) => quote! {
            ::gannet_guest::__private::parse_config::<#s>(config)
        },
        (None, None) => quote! {
            ::gannet_guest::__private::parse_no_config(config)
        },
    };

    let call = match (&record, state_ty) {
        (RecordRef::Mut, Some(_)) => quote!(#name(event.into(), &mut record, state)),
        (RecordRef::Shared, Some(_)) => quote!(#name(event.into(), &record, state)),
        (RecordRef::Mut, None) => quote!(#name(event.into(), &mut record)),
        (RecordRef::Shared, None) => quote!(#name(event.into(), &record)),
    };
    let bind_record = match record {
        RecordRef::Mut => quote!(let mut record = ::gannet_guest::Container::__from_wit(record);),
        RecordRef::Shared => quote!(let record = ::gannet_guest::Container::__from_wit(record);),
    };
    let state_param = if state_ty.is_some() {
        quote!(state)
    } else {
        quote!(_state)
    };

    Ok(quote! {
        #func

        #check

        const _: () = {
            /// Parses the config (and runs `init = ...`): what the WIT `init` does.
            #[allow(dead_code)]
            fn __gannet_init(
                config: &str,
            ) -> ::core::result::Result<#state, ::std::string::String> {
                #init_body
            }

            #[cfg(target_arch = "wasm32")]
            const _: () = {
                ::std::thread_local! {
                    static __GANNET_STATE: ::gannet_guest::__private::Slot<#state> =
                        const { ::core::cell::RefCell::new(::core::option::Option::None) };
                }

                struct __GannetPlugin;

                impl ::gannet_guest::wit::exports::gannet::plugin::handler::Guest for __GannetPlugin {
                    fn init(
                        config: ::std::string::String,
                    ) -> ::core::result::Result<(), ::std::string::String> {
                        let state = __gannet_init(&config)?;
                        ::gannet_guest::__private::store(&__GANNET_STATE, state)
                    }

                    fn process(
                        event: ::gannet_guest::wit::gannet::plugin::types::Lifecycle,
                        record: &::gannet_guest::wit::gannet::plugin::container::Container,
                    ) -> ::core::result::Result<
                        ::gannet_guest::wit::gannet::plugin::types::Verdict,
                        ::std::string::String,
                    > {
                        ::gannet_guest::__private::with_state(&__GANNET_STATE, |#state_param| {
                            #bind_record
                            ::gannet_guest::__private::into_wit(#call)
                                .map(::core::convert::Into::into)
                        })
                    }
                }

                ::gannet_guest::wit::__export_plugin!(
                    __GannetPlugin with_types_in ::gannet_guest::wit
                );
            };
        };
    })
}

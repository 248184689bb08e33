{#- Expectation: every value a lookup maps is one the lookup knows. `columns` lists pairs
    {value: the column holding the cell as written, code: the column its seed maps it to};
    a value with a NULL code is unknown (without `code`, every value of the column is one
    the model could not interpret). Returns one row per unknown value: the whole row,
    with column_name (the code column, or the value column) and value (as written), which
    the validation hook records as the exception's column and value. -#}
{% test expect_values_to_be_known(model, columns) %}
    {%- set selects = [] -%}
    {%- for pair in columns -%}
        {%- set unknown = pair.value ~ ' is not null'
            ~ (' and ' ~ pair.code ~ ' is null' if pair.code else '') -%}
        {%- do selects.append(
            "select *, '" ~ (pair.code or pair.value) ~ "' as column_name, "
            ~ pair.value ~ '::text as value from ' ~ model ~ ' where ' ~ unknown) -%}
    {%- endfor %}

    {{ selects | join('\n    union all\n    ') }}

{% endtest %}

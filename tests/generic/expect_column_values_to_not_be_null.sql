{#- Expectation: `column_name` is never NULL. Returns the whole failing rows, lineage
    included (dbt's not_null returns the column alone, so its failures could not be
    located). dbt-expectations' test of the same name. -#}
{% test expect_column_values_to_not_be_null(model, column_name) %}

    select *
    from {{ model }}
    where {{ column_name }} is null

{% endtest %}
